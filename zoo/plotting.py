"""Figures without pyplot: no global backend switch, no figures kept alive in
pyplot's registry, safe inside long-running training processes."""

import numpy as np


def new_figure(width, height):
    """A matplotlib Figure on the Agg canvas (PNG output)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_curves(rows, path):
    """Loss and accuracy per epoch, train and validation, as a PNG."""
    epochs = [r["epoch"] for r in rows]
    fig = new_figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [r.get(key, np.nan) for r in rows], label="train")
        if any(f"val_{key}" in r for r in rows):
            ax.plot(epochs, [r.get(f"val_{key}", np.nan) for r in rows], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
