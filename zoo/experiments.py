"""Experiments that re-check claims of the papers, as library functions (the
tools only parse flags)."""

import dataclasses
import json
import os

from zoo import registry, training


def control_point_sweep(config, control_points):
    """Trains `config` once per number of weight control points M.

    Args:
      config: a `training.TrainConfig`; its output_dir is the parent of one
        run directory per M.
      control_points: the values of M (None: one weight set per step).
    Returns:
      rows of {control_points, parameters, test accuracy, top-5, loss, time}.
    """
    rows = []
    for m in control_points:
        run = dataclasses.replace(
            config, control_points=m,
            output_dir=os.path.join(config.output_dir, f"M{m if m is not None else 'all'}"))
        results = training.train(run)
        rows.append({
            "control_points": m,
            "parameters": results["parameters"],
            "test_accuracy": results["test"]["accuracy"],
            "test_top5": results["test"]["top5"],
            "test_loss": results["test"]["loss"],
            "train_seconds": results["wall_seconds_this_session"],
            "train_examples": results["train_examples"],
            "test_examples": results["test_examples"],
        })
    return rows


def write_control_point_table(rows, config, path):
    """Writes the sweep as Markdown (`path`) and JSON (`path` with .json)."""
    entry, _ = registry.split_name(config.model)
    resolved = config.resolved()
    length = f"{resolved.epochs} epochs" if resolved.epochs else f"{resolved.steps} steps"
    lines = [
        f"# Weights on their own time grid: {config.model}",
        "",
        f"Each row trains {config.model} on {resolved.dataset} "
        f"({rows[0]['train_examples']} training images, recipe `{resolved.recipe}`, {length}, "
        f"batch {resolved.batch_size}, seed {resolved.seed}) with M weight control points per "
        f"unit and evaluates on {rows[0]['test_examples']} test images.",
        "",
        "| M (control points per unit) | parameters | test top-1 | test top-5 | test loss | train time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        m = "all (M = N)" if r["control_points"] is None else str(r["control_points"])
        lines.append(f"| {m} | {r['parameters']:,} | {r['test_accuracy']:.4f} | "
                     f"{r['test_top5']:.4f} | {r['test_loss']:.4f} | {r['train_seconds']:.0f} |")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump({"model": entry.name, "config": dataclasses.asdict(resolved), "rows": rows},
                  f, indent=2)
