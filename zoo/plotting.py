"""Figures without pyplot: no global backend switch, no figures kept alive in
pyplot's registry, safe inside long-running training processes."""


def new_figure(width, height):
    """A matplotlib Figure on the Agg canvas (PNG output)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure
