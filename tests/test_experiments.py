"""Experiment drivers on a tiny real run."""

import json

from zoo import experiments, training


def test_control_point_sweep_writes_a_table(cifar10_small, tmp_path):
    config = training.TrainConfig(
        model="second-order", dataset=cifar10_small, output_dir=str(tmp_path / "runs"),
        steps=1, batch_size=50, mixed_precision=False, verbose=0)
    rows = experiments.control_point_sweep(config, [None, 1])
    assert [r["control_points"] for r in rows] == [None, 1]
    assert rows[0]["parameters"] == 503_194 and rows[1]["parameters"] < rows[0]["parameters"]
    assert all(0 <= r["test_accuracy"] <= 1 and r["test_examples"] == 100 for r in rows)
    table = tmp_path / "docs" / "time_grid.md"
    experiments.write_control_point_table(rows, config, str(table))
    text = table.read_text()
    assert "| all (M = N) | 503,194 |" in text and "| 1 |" in text
    assert json.loads(table.with_suffix(".json").read_text())["rows"] == rows
