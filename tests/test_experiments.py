"""Experiment drivers on a tiny real run."""

import dataclasses
import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from zoo import training
from zoo.research import experiments


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
    assert "seed 0, float32, reversible engine)" in text
    assert json.loads(table.with_suffix(".json").read_text())["rows"] == rows


def test_control_point_table_names_the_engine_the_run_used(tmp_path):
    # The parabolic CNN is not invertible: train() uses autodiff whatever the
    # recipe asks for, and the table must say so.
    config = training.TrainConfig(model="parabolic-cifar10", output_dir=str(tmp_path),
                                  mixed_precision=False)
    assert config.resolved().reversible
    row = {"control_points": None, "parameters": 1, "test_accuracy": 0.1, "test_top5": 0.5,
           "test_loss": 2.3, "train_seconds": 1.0, "train_examples": 10, "test_examples": 10}
    table = tmp_path / "parabolic.md"
    experiments.write_control_point_table([row], config, str(table))
    assert "seed 0, float32, plain autodiff)" in table.read_text()


def test_small_data_sweep_trains_each_model_and_share(cifar10_small, tmp_path):
    from zoo import data as zdata

    config = training.TrainConfig(
        model="unused", dataset=cifar10_small, output_dir=str(tmp_path / "runs"),
        recipe="cpu", batch_size=20, mixed_precision=False, verbose=0)
    steps = {0.1: 1, 0.2: 2}
    models = ["hamiltonian-74", "resnet-32"]
    rows = experiments.small_data_sweep(config, models, [0.1, 0.2], [3], steps.__getitem__)
    assert [(r["model"], r["fraction"], r["seed"]) for r in rows] == [
        (m, f, 3) for f in (0.1, 0.2) for m in models]
    train = zdata.load(cifar10_small, "train")
    for r in rows:
        assert r["train_examples"] == len(zdata.stratified_subset(train, r["fraction"], 3))
        assert r["steps"] == steps[r["fraction"]] and r["test_examples"] == 100
        # Evaluated again after re-estimating the batch-norm statistics on the run's subset.
        run_dir = tmp_path / "runs" / f"{r['model']}-f{r['fraction']:g}-s3"
        recalibrated = json.loads((run_dir / "recalibrated.json").read_text())
        assert r["batch_norm_recalibrated"]
        assert r["test_accuracy"] == recalibrated["accuracy"]
        assert recalibrated["test_examples"] == 100
        n = r["train_examples"]  # full batches of 20, or the one partial batch
        assert recalibrated["recalibration_images"] == max(1, n // 20) * min(20, n)
        as_trained = json.loads((run_dir / "results.json").read_text())["test"]["accuracy"]
        assert r["test_accuracy_as_trained"] == as_trained

    # Finished runs are read back, not trained again.
    assert experiments.small_data_sweep(
        config, models, [0.1, 0.2], [3], steps.__getitem__) == rows
    assert experiments.collect_small_data_runs(config.output_dir) == rows

    # The tool writes the report of a stopped sweep from its finished runs.
    report = tmp_path / "docs" / "small.md"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", "small_data.py"), "--report_only",
         f"--output_dir={config.output_dir}", f"--report={report}"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(report.with_suffix(".json").read_text())["rows"] == rows
    assert "batch 20, peak learning rate 0.1" in report.read_text()


def test_small_data_report(tmp_path):
    config = training.TrainConfig(model="unused", dataset="cifar10", output_dir="x",
                                  recipe="cpu")
    rows = [{"model": m, "fraction": f, "seed": s, "steps": 10, "epochs": 2,
             "parameters": 100 if m == "a" else 90, "train_examples": int(5000 * f),
             "test_examples": 10_000, "batch_norm_recalibrated": True, "test_accuracy": acc,
             "test_top5": 0.9, "test_loss": 1.0, "test_accuracy_as_trained": acc - 0.1,
             "train_seconds": 5.0}
            for m, f, s, acc in [("a", 0.01, 0, 0.30), ("a", 0.01, 1, 0.34),
                                 ("b", 0.01, 0, 0.20), ("b", 0.01, 1, 0.26),
                                 ("a", 0.1, 0, 0.5), ("b", 0.1, 0, 0.6)]]
    report = tmp_path / "docs" / "small.md"
    summary = experiments.write_small_data_report(rows, config, str(report), "cmd")
    assert [(s["model"], s["fraction"], s["runs"]) for s in summary] == [
        ("a", 0.01, 2), ("b", 0.01, 2), ("a", 0.1, 1), ("b", 0.1, 1)]
    assert abs(summary[0]["mean_accuracy"] - 0.32) < 1e-12
    assert abs(summary[0]["std_accuracy"] - 0.04 / 2**0.5) < 1e-12
    text = report.read_text()
    assert "| 1% | 50 | 10 | 32.00 ± 2.83% | 23.00 ± 4.24% | +9.00 |" in text
    assert "| 10% | 500 | 10 | 50.00% | 60.00% | -10.00 |" in text
    # The accuracies as trained follow in their own table.
    as_trained = text.split("As trained")[1]
    assert "| 1% | 50 | 10 | 22.00 ± 2.83% | 13.00 ± 4.24% | +9.00 |" in as_trained
    assert "| a | 1% | 0 | 30.00% | 90.00% | 1.000 | 20.00% | 2 | 5 |" in text
    assert report.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert json.loads(report.with_suffix(".json").read_text())["rows"] == rows


def test_final_evaluation_is_the_weights_that_were_saved(cifar10_small, tmp_path):
    import keras
    from zoo import data as zdata, registry

    config = training.TrainConfig(
        model="hamiltonian-74", dataset=cifar10_small, output_dir=str(tmp_path / "run"),
        recipe="cpu", batch_size=50, steps=3, mixed_precision=False, verbose=0)
    results = training.train(config)
    # The same regularisers, whose penalty is part of the reported loss.
    resolved = config.resolved()
    model = registry.build("hamiltonian-74", classes=10, input_shape=(32, 32, 3),
                           weight_decay=resolved.weight_decay,
                           smoothness_decay=resolved.smoothness_decay)
    model.load_weights(str(tmp_path / "run" / "last.weights.h5"))
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    fresh = model.evaluate(zdata.eval_dataset(zdata.load(cifar10_small, "test"), 50),
                           verbose=0, return_dict=True)
    assert abs(fresh["accuracy"] - results["test"]["accuracy"]) < 1e-6
    assert abs(fresh["loss"] - results["test"]["loss"]) < 1e-4


def test_deep_training_run_logs_every_step(cifar10_small, tmp_path):
    config = training.TrainConfig(
        model="hamiltonian-74", dataset=cifar10_small, output_dir=str(tmp_path / "rev"),
        recipe="paper", batch_size=20, steps=12, reversible=True, validation_freq=10**9,
        limit_eval=40, verbose=0)
    results, rows = experiments.deep_training_run(config)
    assert results["reversible_engine"] and results["test_examples"] == 40
    # 200 images at batch 20 is 10 steps per epoch: the second epoch's
    # running mean restarts, and the per-step losses still average to it.
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert abs(sum(r["loss"] for r in rows[:10]) / 10 - rows[9]["loss_running_mean"]) < 1e-4
    assert abs((rows[10]["loss"] + rows[11]["loss"]) / 2 - rows[11]["loss_running_mean"]) < 1e-4
    assert all(r["allocator_peak_bytes"] > 0 and r["max_rss_bytes"] > 0 for r in rows)
    summary = experiments.summarise_steps(rows)
    assert summary["steps_logged"] == 12 and summary["allocator_peak_bytes"] > 0

    autodiff = dataclasses.replace(config, reversible=False, steps=2,
                                   output_dir=str(tmp_path / "auto"))
    runs = {"reversible": (results, rows), "autodiff": experiments.deep_training_run(autodiff)}
    report = tmp_path / "docs" / "deep.md"
    experiments.write_deep_training_report(runs, str(report), "cmd")
    text = report.read_text()
    assert "| reversible | reversible | float32 | 20 | 12 |" in text and "| 2 | " in text
    assert rows[0]["penalty"] > 0 and 0 <= rows[0]["accuracy"] <= 1
    assert "| autodiff | autodiff | float32 | 20 | 2 |" in text
    assert report.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
