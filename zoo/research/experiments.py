"""Experiments that re-check claims of the papers, as library functions (the
tools only parse flags)."""

import csv
import dataclasses
import json
import math
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf

from zoo import registry, training
from zoo.plotting import new_figure
from zoo import files


def _write_report(path, lines, payload):
    """Writes the Markdown `lines` to `path` and `payload` as JSON beside it
    (same name, .json), creating the directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        json.dump(payload, f, indent=2)


def train_or_reuse(config):
    """`training.train(config)`, or the results of a finished run in
    `config.output_dir` with the same configuration, so that a sweep which was
    interrupted continues where it stopped."""
    path = os.path.join(config.output_dir, "results.json")
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
        now = json.loads(json.dumps(dataclasses.asdict(config.resolved())))
        ignore = {"verbose", "output_dir", "data_dir"}
        if all(results["config"].get(k) == v for k, v in now.items() if k not in ignore):
            return results
    return training.train(config)


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
        results = train_or_reuse(run)
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
    engine = "reversible engine" if training.uses_reversible_engine(resolved) else "plain autodiff"
    length = (f"{resolved.epochs} epoch{'s' if resolved.epochs != 1 else ''}" if resolved.epochs
              else f"{resolved.steps} step{'s' if resolved.steps != 1 else ''}")
    lines = [
        f"# Weights on their own time grid: {config.model}",
        "",
        f"Each row trains {config.model} on {resolved.dataset} "
        f"({rows[0]['train_examples']} training images, recipe `{resolved.recipe}`, {length}, "
        f"batch {resolved.batch_size}, seed {resolved.seed}, "
        f"{training.dtype_policy(resolved.mixed_precision)}, {engine}) with M weight "
        f"control points per unit and evaluates on {rows[0]['test_examples']} test images.",
        "",
        "| M (control points per unit) | parameters | test top-1 | test top-5 | test loss | train time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        m = "all (M = N)" if r["control_points"] is None else str(r["control_points"])
        lines.append(f"| {m} | {r['parameters']:,} | {r['test_accuracy']:.4f} | "
                     f"{r['test_top5']:.4f} | {r['test_loss']:.4f} | {r['train_seconds']:.0f} |")
    _write_report(path, lines,
                  {"model": entry.name, "config": dataclasses.asdict(resolved), "rows": rows})


# --------------------------------------------------------------------------
# Robustness to small training sets (Chang et al. 2018, Fig. 3)
# --------------------------------------------------------------------------
def small_data_sweep(config, models, fractions, seeds, steps, recalibrate=True):
    """Trains each model on stratified fractions of the training set.

    Args:
      config: a `training.TrainConfig` giving the recipe; its output_dir is
        the parent of one run directory per (model, fraction, seed), and its
        model field is ignored.
      models: model names (e.g. hamiltonian-74, resnet-32).
      fractions: shares of the training set (0.01 = 1 %).
      seeds: seeds; each picks the subset, the initialisation and the data order.
      steps: a function fraction -> optimizer steps, the same for every model,
        so that the models are compared at equal compute.
      recalibrate: also evaluate each run after re-estimating its batch-norm
        statistics on its training subset (`recalibrated_test_metrics`); the
        rows' test_* fields are then those, and test_accuracy_as_trained
        keeps the accuracy with the moving statistics the run ended with.
    Returns:
      rows of {model, fraction, seed, steps, parameters, test accuracy, ...}.
      A run already finished in its directory is read back, not repeated.
    """
    rows = []
    for fraction in fractions:
        for model in models:
            for seed in seeds:
                run = dataclasses.replace(
                    config, model=model, fraction=fraction, seed=seed, steps=steps(fraction),
                    epochs=None, validation_freq=10**9,
                    output_dir=os.path.join(config.output_dir,
                                            f"{model}-f{fraction:g}-s{seed}"))
                results = train_or_reuse(run)
                row = _small_data_row(
                    results, recalibrated_test_metrics(run.output_dir) if recalibrate else None)
                print(f"{model}, {fraction:.0%} of the training set, seed {seed}: "
                      f"test top-1 {row['test_accuracy']:.4f} after {results['steps']} steps",
                      flush=True)
                rows.append(row)
    return rows


def recalibrated_test_metrics(run_dir):
    """Test top-1, top-5 and cross-entropy of a finished run's last weights
    after `training.recalibrate_batch_norm` on the run's own training subset,
    evaluated in float32 on the run's test split.

    A short run ends with moving batch-norm statistics that still remember
    their initial values (see `recalibrate_batch_norm`), which can put a
    model that learned something at chance; re-estimating them measures what
    the weights learned, for every model alike. Cached in
    `run_dir/recalibrated.json`.
    """
    from zoo import evaluation

    path = os.path.join(run_dir, "recalibrated.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    with open(os.path.join(run_dir, "results.json")) as f:
        config = training.TrainConfig(**json.load(f)["config"])
    train_split, test_split = training.load_splits(config)
    model = registry.build(config.model, classes=train_split.num_classes,
                           input_shape=train_split.image_shape, dtype="float32",
                           **training.architecture_args(config))
    model.load_weights(os.path.join(run_dir, "last.weights.h5"))
    batches = training.recalibrate_batch_norm(model, train_split.images,
                                              config.resolved().batch_size)
    report = evaluation.evaluate(model, test_split)
    metrics = {"accuracy": report["top1"], "top5": report["top5"], "loss": report["loss"],
               "test_examples": report["num_examples"], "recalibration_batches": batches,
               "recalibration_images": batches * min(config.resolved().batch_size,
                                                     len(train_split)),
               "precision": "float32"}
    files.atomic_write(path, json.dumps(metrics, indent=2))
    return metrics


def _small_data_row(results, recalibrated=None):
    """One report row. With `recalibrated` metrics the test_* fields are
    those (and the loss is plain cross-entropy); test_accuracy_as_trained is
    always the accuracy at the end of training."""
    config = results["config"]
    test = recalibrated or results["test"]
    return {
        "model": config["model"], "fraction": config["fraction"], "seed": config["seed"],
        "steps": results["steps"], "epochs": results["epochs"],
        "parameters": results["parameters"],
        "train_examples": results["train_examples"],
        "test_examples": results["test_examples"],
        "batch_norm_recalibrated": recalibrated is not None,
        "test_accuracy": test["accuracy"],
        "test_top5": test["top5"],
        "test_loss": test["loss"],
        "test_accuracy_as_trained": results["test"]["accuracy"],
        "train_seconds": results["wall_seconds_this_session"],
    }


def collect_small_data_runs(output_dir, recalibrate=True):
    """The rows of every finished run under a sweep's output_dir (e.g. of a
    sweep that was stopped), ordered by fraction, model and seed."""
    rows = []
    for name in sorted(os.listdir(output_dir)):
        run_dir = os.path.join(output_dir, name)
        path = os.path.join(run_dir, "results.json")
        if os.path.exists(path):
            with open(path) as f:
                results = json.load(f)
            rows.append(_small_data_row(
                results, recalibrated_test_metrics(run_dir) if recalibrate else None))
    models = list(dict.fromkeys(r["model"] for r in rows))
    return sorted(rows, key=lambda r: (r["fraction"], models.index(r["model"]), r["seed"]))


def finished_run_config(output_dir):
    """The `training.TrainConfig` of the first finished run under a sweep's
    output_dir (its recipe settings describe the sweep), or None."""
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name, "results.json")
        if os.path.exists(path):
            with open(path) as f:
                return training.TrainConfig(**json.load(f)["config"])
    return None


def summarise_small_data(rows, key="test_accuracy"):
    """Mean, sample standard deviation and count of test accuracy (the row
    field `key`) per (model, fraction), in the order the rows first name them."""
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["fraction"]), []).append(r)
    summary = []
    for (model, fraction), group in groups.items():
        accuracy = np.array([r[key] for r in group], dtype=np.float64)
        summary.append({
            "model": model, "fraction": fraction, "runs": len(group),
            "train_examples": group[0]["train_examples"], "steps": group[0]["steps"],
            "parameters": group[0]["parameters"],
            "mean_accuracy": float(accuracy.mean()),
            "std_accuracy": float(accuracy.std(ddof=1)) if len(group) > 1 else float("nan"),
            "accuracies": accuracy.tolist(),
        })
    return summary


def plot_small_data(summary, path, as_trained=None):
    """Test accuracy against training-set share, one line per model, error
    bars one standard deviation over seeds; `as_trained` (a second summary)
    adds dashed lines of the same colours."""
    figure = new_figure(6, 4)
    ax = figure.subplots()
    for model in dict.fromkeys(s["model"] for s in summary):
        color = None  # the solid line's colour, reused by the dashed one
        for cells, style, label in ((summary, "-", model),
                                    (as_trained or [], "--", f"{model}, as trained")):
            points = sorted((s for s in cells if s["model"] == model),
                            key=lambda s: s["fraction"])
            if not points:
                continue
            line = ax.errorbar([100 * p["fraction"] for p in points],
                               [100 * p["mean_accuracy"] for p in points],
                               yerr=[0 if math.isnan(p["std_accuracy"]) else 100 * p["std_accuracy"]
                                     for p in points],
                               marker="o", capsize=3, linestyle=style, label=label, color=color)
            color = line.lines[0].get_color()
    ax.set_xscale("log")
    ax.set_xlabel("share of the CIFAR-10 training set (%)")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_small_data_report(rows, config, path, command=""):
    """Markdown table (`path`), JSON (same name, .json) and PNG (.png)."""
    summary = summarise_small_data(rows)
    recalibrated = all(r.get("batch_norm_recalibrated") for r in rows)
    resolved = config.resolved()
    models = list(dict.fromkeys(r["model"] for r in rows))
    base = os.path.splitext(path)[0]
    lines = [
        "# Robustness to small training sets (Chang et al. 2018, Fig. 3)",
        "",
        f"Generated by `{command or 'zoo.research.experiments.write_small_data_report'}`.",
        "",
        f"Each run trains one model on a stratified share of the {resolved.dataset} training "
        f"set (the subset is drawn per seed) with the `{resolved.recipe}` recipe (batch "
        f"{resolved.batch_size}, peak learning rate {resolved.learning_rate}, weight decay "
        f"{resolved.weight_decay}, mixed precision {resolved.mixed_precision}); every model gets "
        f"the same number of optimizer steps at a given share. Accuracy is on all "
        f"{rows[0]['test_examples']:,} test images; ± is one sample standard deviation over "
        f"seeds.",
        "",
    ]
    if recalibrated:
        lines += [
            "Before evaluation each model's batch-norm moving statistics are re-estimated on "
            "its own training subset (`zoo.training.recalibrate_batch_norm`, in float32): after "
            "so few steps the moving averages (momentum 0.99) still hold much of their initial "
            "values, which hurts models with many batch norms (ResNet) far more than the "
            "Hamiltonian network, so the accuracy as trained measures the averaging, not what "
            "the weights learned. Both are reported: the re-estimated figures evaluated in "
            "float32, the as-trained ones from each run's own final evaluation (in its training "
            "precision).",
            "",
            "With re-estimated batch-norm statistics:",
            "",
        ]
    lines += _share_table(summary, models)
    if recalibrated:
        lines += ["", "As trained (the moving statistics the runs ended with):", ""]
        lines += _share_table(summarise_small_data(rows, "test_accuracy_as_trained"), models)
    lines += ["", "Parameters: " + ", ".join(
        f"{m} {next(s['parameters'] for s in summary if s['model'] == m):,}" for m in models) + ".",
        "", "Per run:", "",
        "| model | share | seed | test top-1 | test top-5 | test loss | top-1 as trained "
        "| epochs | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {100 * r['fraction']:g}% | {r['seed']} | "
                     f"{100 * r['test_accuracy']:.2f}% | {100 * r['test_top5']:.2f}% | "
                     f"{r['test_loss']:.3f} | {100 * r['test_accuracy_as_trained']:.2f}% | "
                     f"{r['epochs']} | {r['train_seconds']:.0f} |")
    lines += ["", f"![accuracy against training-set share]({os.path.basename(base)}.png)", ""]
    _write_report(path, lines, {"config": dataclasses.asdict(resolved), "rows": rows,
                                "summary": summary, "command": command})
    plot_small_data(summary, base + ".png",
                    summarise_small_data(rows, "test_accuracy_as_trained") if recalibrated else None)
    return summary


def _share_table(summary, models):
    lines = [
        "| share | training images | steps | " + " | ".join(models)
        + (f" | {models[0]} − {models[1]} (points) |" if len(models) == 2 else " |"),
        "| --- | --- | --- | " + " | ".join("---" for _ in models)
        + (" | --- |" if len(models) == 2 else " |"),
    ]
    for fraction in dict.fromkeys(s["fraction"] for s in summary):
        cells = {s["model"]: s for s in summary if s["fraction"] == fraction}
        first = next(iter(cells.values()))
        line = f"| {100 * fraction:g}% | {first['train_examples']:,} | {first['steps']} | "
        line += " | ".join(_mean_std(cells.get(m)) for m in models)
        if len(models) == 2 and all(m in cells for m in models):
            line += f" | {100 * (cells[models[0]]['mean_accuracy'] - cells[models[1]]['mean_accuracy']):+.2f}"
        lines.append(line + " |")
    return lines


def _mean_std(cell):
    if cell is None:
        return "–"
    if math.isnan(cell["std_accuracy"]):
        return f"{100 * cell['mean_accuracy']:.2f}%"
    return f"{100 * cell['mean_accuracy']:.2f} ± {100 * cell['std_accuracy']:.2f}%"


# --------------------------------------------------------------------------
# Training a very deep network in bounded memory (Chang et al. 2018, Sec. 4)
# --------------------------------------------------------------------------
def _rss_bytes():
    """Resident set size of this process now (Linux), else None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class StepLog(keras.callbacks.Callback):
    """Per training step: loss, seconds, TensorFlow allocator peak of the step
    and process memory, appended to a CSV as the run goes (so a run that dies
    keeps its curve).

    Keras reports the running mean of the loss over the epoch so far; the
    step's own loss is recovered from consecutive means (all batches have the
    same size). The loss includes the regularisers. The allocator peak is
    reset before each step, so each row is that step's own peak, weights and
    optimizer state included. Every `penalty_every` steps the regularisers'
    penalty (weight decay and smoothness, `model.losses`) is computed after
    the step, so that the cross-entropy can be told from it; 0 skips it.
    """

    FIELDS = ("step", "loss", "loss_running_mean", "accuracy", "penalty", "seconds", "allocator_peak_bytes", "allocator_current_bytes",
              "rss_bytes", "max_rss_bytes")

    def __init__(self, path, device="CPU:0", penalty_every=0):
        super().__init__()
        self.path, self.device, self.penalty_every = path, device, penalty_every
        self.rows = []
        self.previous = {}

    def _step_value(self, name, batch, logs):
        """The step's own value of a metric Keras reports as a running mean."""
        mean = float((logs or {}).get(name, float("nan")))
        # `batch` restarts at 0 with every `fit` call, as the running mean does.
        value = mean if batch == 0 else (batch + 1) * mean - batch * self.previous[name]
        self.previous[name] = mean
        return value, mean

    def _memory(self):
        try:
            return tf.config.experimental.get_memory_info(self.device)
        except (ValueError, tf.errors.NotFoundError):
            return None

    def on_train_begin(self, logs=None):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if not os.path.exists(self.path):
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.FIELDS)

    def on_train_batch_begin(self, batch, logs=None):
        if self._memory() is not None:
            tf.config.experimental.reset_memory_stats(self.device)
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self.start
        memory = self._memory() or {}
        loss, mean = self._step_value("loss", batch, logs)
        accuracy, _ = self._step_value("accuracy", batch, logs)
        step = int(self.model.optimizer.iterations.numpy())
        penalty = None
        if self.penalty_every and (step % self.penalty_every == 0 or step == 1):
            penalty = float(sum(float(v) for v in self.model.losses))
        row = {"step": step, "loss": loss, "loss_running_mean": mean,
               "accuracy": accuracy, "penalty": penalty,
               "seconds": round(seconds, 4),
               "allocator_peak_bytes": memory.get("peak"),
               "allocator_current_bytes": memory.get("current"),
               "rss_bytes": _rss_bytes(),
               "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
        self.rows.append(row)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.FIELDS).writerow(row)


FLOAT_FIELDS = ("loss", "loss_running_mean", "accuracy", "penalty", "seconds")


def read_step_log(path):
    """The rows of a `StepLog` CSV, numbers parsed (empty cells are None)."""
    with open(path, newline="") as f:
        return [{k: (None if v == "" else float(v) if k in FLOAT_FIELDS else int(v))
                 for k, v in row.items()} for row in csv.DictReader(f)]


def deep_training_run(config, penalty_every=25):
    """Trains `config` (e.g. hamiltonian-1202 with the reversible engine) and
    logs every step with `StepLog` to `<output_dir>/steps.csv`. Returns
    (training results, step rows). Resumes like `training.train`; the step log
    then holds the steps of every session."""
    path = os.path.join(config.output_dir, "steps.csv")
    log = StepLog(path, penalty_every=penalty_every)
    results = training.train(config, callbacks=[log])
    return results, read_step_log(path)


def summarise_steps(rows, skip=1):
    """Peak memory and speed over a step log; the first `skip` steps (tracing)
    are left out of the timing."""
    timed = [r["seconds"] for r in rows[skip:]] or [r["seconds"] for r in rows]
    peaks = [r["allocator_peak_bytes"] for r in rows if r["allocator_peak_bytes"] is not None]
    window = max(1, min(20, len(rows) // 5))
    penalties = [r["penalty"] for r in rows if r.get("penalty") is not None]
    return {
        "steps_logged": len(rows),
        "allocator_peak_bytes": max(peaks) if peaks else None,
        "allocator_peak_median_bytes": float(np.median(peaks)) if peaks else None,
        "max_rss_bytes": max(r["max_rss_bytes"] for r in rows),
        "median_step_seconds": float(np.median(timed)),
        "first_loss_mean": float(np.mean([r["loss"] for r in rows[:window]])),
        "last_loss_mean": float(np.mean([r["loss"] for r in rows[-window:]])),
        "first_accuracy_mean": float(np.mean([r.get("accuracy", np.nan) for r in rows[:window]])),
        "last_accuracy_mean": float(np.mean([r.get("accuracy", np.nan) for r in rows[-window:]])),
        "first_penalty": penalties[0] if penalties else None,
        "last_penalty": penalties[-1] if penalties else None,
        "loss_window": window,
    }


def plot_step_logs(logs, path):
    """Loss and per-step allocator peak against step; `logs` maps a label to
    step rows."""
    figure = new_figure(10, 4)
    loss_ax, memory_ax = figure.subplots(1, 2)
    for label, rows in logs.items():
        steps = [r["step"] for r in rows]
        losses = np.array([r["loss"] for r in rows], dtype=np.float64)
        line, = loss_ax.plot(steps, losses, alpha=0.25)
        if len(losses) >= 30:
            smooth = np.convolve(losses, np.ones(10) / 10, mode="valid")
            loss_ax.plot(steps[9:], smooth, color=line.get_color(),
                         label=f"{label} (mean of 10 steps)")
        else:
            line.set_label(label)
        memory_ax.plot(steps, [(r["allocator_peak_bytes"] or np.nan) / 2**20 for r in rows],
                       label=label)
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss of the step")
    memory_ax.set_xlabel("step")
    memory_ax.set_ylabel("allocator peak of the step (MiB)")
    memory_ax.set_yscale("log")
    for ax in (loss_ax, memory_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_deep_training_report(runs, path, command=""):
    """Markdown (`path`), JSON (.json) and PNG (.png) for deep training runs.

    `runs` maps a label (e.g. "reversible") to (training results, step rows)
    from `deep_training_run`.
    """
    base = os.path.splitext(path)[0]
    mib = 2.0**20
    first = next(iter(runs.values()))[0]
    lines = [
        f"# Training {first['model']} in bounded memory",
        "",
        f"Generated by `{command or 'zoo.research.experiments.write_deep_training_report'}`.",
        "",
        f"Real training on {first['dataset']} ({first['train_examples']:,} training images, "
        f"augmented), every step logged by `zoo.research.experiments.StepLog`: the step's own "
        f"TensorFlow allocator peak (reset before each step; weights, gradients and optimizer "
        f"state included) and the process's maximum resident set size. The first step (tracing) "
        f"is left out of the step time. Loss and accuracy: those of single training batches, "
        f"averaged over the first and last k steps (k in the table); the loss includes the regularisers' "
        f"penalty (weight decay and smoothness), given on its own at the first and last step "
        f"it was computed.",
        "",
        "| run | engine | precision | batch | steps | parameters | median s/step | allocator peak MiB | process max RSS MiB | k | loss, first → last | penalty, first → last | batch accuracy, first → last | test top-1 (images) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    summaries = {}
    for label, (results, rows) in runs.items():
        summary = summarise_steps(rows)
        summaries[label] = summary
        config = results["config"]
        lines.append(
            f"| {label} | {'reversible' if results['reversible_engine'] else 'autodiff'} | "
            f"{training.dtype_policy(config['mixed_precision'])} | "
            f"{config['batch_size']} | {results['steps']} | {results['parameters']:,} | "
            f"{summary['median_step_seconds']:.2f} | "
            f"{(summary['allocator_peak_bytes'] or float('nan')) / mib:.1f} | "
            f"{summary['max_rss_bytes'] / mib:.0f} | {summary['loss_window']} | "
            f"{summary['first_loss_mean']:.3f} → {summary['last_loss_mean']:.3f} | "
            f"{_arrow(summary['first_penalty'], summary['last_penalty'], '{:.3f}')} | "
            f"{_arrow(summary['first_accuracy_mean'], summary['last_accuracy_mean'], '{:.1%}')} | "
            f"{100 * results['test']['accuracy']:.2f}% ({results['test_examples']:,}) |")
    lines += ["", f"![loss and memory per step]({os.path.basename(base)}.png)", ""]
    _write_report(path, lines, {"command": command, "runs": {
        label: {"results": results, "summary": summaries[label], "steps": rows}
        for label, (results, rows) in runs.items()}})
    plot_step_logs({label: rows for label, (_, rows) in runs.items()}, base + ".png")
    return summaries


def _arrow(first, last, form):
    if first is None or last is None:
        return "–"
    return f"{form.format(first)} → {form.format(last)}"
