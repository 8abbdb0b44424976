"""Evaluating a classifier on a dataset split, and writing the report.

    from zoo import data, evaluation
    split = data.load("cifar10", "test")
    report = evaluation.evaluate(model, split)
    evaluation.save_report(report, "eval")   # eval.json + two PNG figures

`evaluate` returns plain Python values (no numpy scalars), so a report is
JSON-serialisable as it is and loads back equal to itself.
"""

import json
import os

import numpy as np

from zoo import data as data_lib
from zoo.plotting import new_figure
from zoo.errors import EvaluationError

# Keras' clipping constant for cross-entropy on probabilities: a true-class
# probability of exactly 0 would make the loss infinite.
EPSILON = 1e-7
# How far model outputs may stray from a probability distribution (float32
# softmax rounding) before we conclude they are logits.
PROBABILITY_TOLERANCE = 1e-3
# Above this many classes the confusion-matrix cells are too small to hold counts.
MAX_ANNOTATED_CLASSES = 20


def evaluate(model, split, batch_size=100, from_logits=False, limit=None, flip_tta=False):
    """Top-1/top-5 accuracy, loss, per-class accuracy and confusion matrix.

    Args:
      model: a keras.Model mapping images (N, H, W, C) to one score per class.
      split: a `zoo.data.Split`.
      batch_size: examples per forward pass.
      from_logits: the model outputs logits (e.g. built with
        `classifier_activation=None`) instead of probabilities.
      limit: evaluate only the first `limit` examples of the split.
      flip_tta: also score each image by the mean of the model's outputs on
        it and on its mirror image (horizontal flip test-time augmentation),
        reported apart as `flip_tta` {top1, top5}: the papers' protocol, and
        the headline, is the single crop.

    Returns:
      A dict: `top1`, `top5` (top-k accuracy with k = min(5, classes), k in
      `top5_k`), `loss` (mean sparse categorical cross-entropy), `num_examples`,
      `per_class_accuracy` (class name -> accuracy, None for a class without
      examples), `confusion_matrix` (rows: true class, columns: predicted
      class), `label_names`, `dataset`, `split`, `source`, `model`,
      `from_logits`.

    Ties between scores go to the lower class index, for top-1 as for top-k
    (as `np.argmax` and `zoo.inference.top_k` break them).

    Raises:
      EvaluationError (a ValueError): empty split, labels outside the class
        range, model input or output shape not matching the data, outputs
        that are not finite or (without from_logits) not probabilities.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise EvaluationError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if limit is not None:
        if not isinstance(limit, (int, np.integer)) or limit < 1:
            raise EvaluationError(f"limit must be None or a positive integer, got {limit!r}.")
        if limit < len(split):
            split = split.subset(slice(0, int(limit)))
    where = f"split {split.split!r} of dataset {split.name!r} ({split.source})"
    if len(split) == 0:
        raise EvaluationError(f"The {where} has no examples to evaluate.")
    num_classes = split.num_classes
    if num_classes < 1:
        raise EvaluationError(f"The {where} has no class names.")
    if split.labels.min() < 0 or split.labels.max() >= num_classes:
        raise EvaluationError(
            f"The {where} has labels from {split.labels.min()} to {split.labels.max()}, "
            f"outside 0..{num_classes - 1} for its {num_classes} classes.")
    _check_model_shapes(model, split, num_classes, where)

    top_k = min(5, num_classes)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    top_k_hits = 0
    flip_hits = np.zeros(2, np.int64)  # top-1, top-k
    loss_sum = np.float64(0.0)
    class_index = np.arange(num_classes)
    for images, labels in data_lib.eval_dataset(split, batch_size):
        # float64 from here on: summing 10^4+ per-example losses in float32
        # would lose digits the report prints.
        outputs = np.asarray(model.predict_on_batch(images), dtype=np.float64)
        labels = labels.numpy()
        _check_outputs(outputs, len(labels), num_classes, from_logits, where)

        predicted = np.argmax(outputs, axis=1)
        np.add.at(confusion, (labels, predicted), 1)

        top_k_hits += int(np.sum(_rank_of_true_class(outputs, labels, class_index) < top_k))
        if flip_tta:
            mirrored = np.asarray(model.predict_on_batch(images[:, :, ::-1, :]), np.float64)
            rank = _rank_of_true_class((outputs + mirrored) / 2, labels, class_index)
            flip_hits += [int(np.sum(rank < 1)), int(np.sum(rank < top_k))]
        true_scores = outputs[np.arange(len(labels)), labels][:, None]

        if from_logits:
            peak = outputs.max(axis=1)
            log_normaliser = peak + np.log(np.exp(outputs - peak[:, None]).sum(axis=1))
            loss_sum += np.sum(log_normaliser - true_scores[:, 0])
        else:
            loss_sum += np.sum(-np.log(np.clip(true_scores[:, 0], EPSILON, 1.0)))

    n = int(confusion.sum())
    support = confusion.sum(axis=1)
    names = [str(name) for name in split.label_names]
    per_class = {
        name: (float(confusion[i, i] / support[i]) if support[i] else None)
        for i, name in enumerate(names)
    }
    report = {
        "model": getattr(model, "name", None),
        "dataset": split.name,
        "split": split.split,
        "source": str(split.source),
        "num_examples": n,
        "top1": float(np.trace(confusion) / n),
        "top5": float(top_k_hits / n),
        "top5_k": top_k,
        "loss": float(loss_sum / n),
        "from_logits": bool(from_logits),
        "label_names": names,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }
    if flip_tta:
        report["flip_tta"] = {"top1": float(flip_hits[0] / n), "top5": float(flip_hits[1] / n)}
    return report


def _rank_of_true_class(outputs, labels, class_index):
    """How many classes score ahead of the true one (ties go to the lower index)."""
    true_scores = outputs[np.arange(len(labels)), labels][:, None]
    ahead = (outputs > true_scores) | (
        (outputs == true_scores) & (class_index[None, :] < labels[:, None]))
    return ahead.sum(axis=1)


def _check_model_shapes(model, split, num_classes, where):
    """Fails before any prediction when the declared shapes cannot fit."""
    output_shape = _single_shape(getattr(model, "output_shape", None))
    if output_shape is not None and output_shape[-1] is not None \
            and output_shape[-1] != num_classes:
        raise EvaluationError(_class_mismatch(output_shape[-1], num_classes, where))
    input_shape = _single_shape(getattr(model, "input_shape", None))
    if input_shape is not None and len(input_shape) == 4:
        expected = tuple(input_shape[1:])
        if any(e is not None and e != a for e, a in zip(expected, split.image_shape)):
            raise EvaluationError(
                f"The model takes images of shape {expected} but the {where} has images of "
                f"shape {split.image_shape}.")


def _single_shape(shape):
    # Subclassed models may not define the attribute; multi-output models give
    # a list, which the output check after the first batch then reports.
    try:
        if shape is None or not all(d is None or isinstance(d, int) for d in shape):
            return None
    except TypeError:
        return None
    return tuple(shape)


def _class_mismatch(model_classes, num_classes, where):
    return (f"The model outputs {model_classes} classes but the {where} has "
            f"{num_classes} classes; evaluate it on the dataset it was built for.")


def _check_outputs(outputs, batch, num_classes, from_logits, where):
    if outputs.ndim != 2 or outputs.shape[0] != batch:
        raise EvaluationError(
            f"The model must output one score per class for each image, shape ({batch}, "
            f"{num_classes}); got {outputs.shape}.")
    if outputs.shape[1] != num_classes:
        raise EvaluationError(_class_mismatch(outputs.shape[1], num_classes, where))
    if not np.all(np.isfinite(outputs)):
        raise EvaluationError(
            "The model produced NaN or infinite outputs (diverged weights?).")
    if not from_logits and (
            outputs.min() < -PROBABILITY_TOLERANCE
            or np.max(np.abs(outputs.sum(axis=1) - 1)) > PROBABILITY_TOLERANCE):
        # Clipping logits as if they were probabilities gives a loss that
        # looks plausible and is wrong; refuse instead.
        raise EvaluationError(
            "The model's outputs are not probabilities (negative, or rows not summing to 1); "
            "if it outputs logits (classifier_activation=None), pass from_logits=True.")


def save_report(report, output_dir, prefix="eval"):
    """Writes a report of `evaluate` as JSON and two PNG figures.

    Files in `output_dir` (created if missing):
      `<prefix>.json`: the report;
      `<prefix>_confusion_matrix.png`: rows true class, columns predicted
        class, colours normalised per row, counts in the cells up to 20 classes;
      `<prefix>_per_class_accuracy.png`: a bar per class.

    Returns:
      {"json": path, "confusion_matrix": path, "per_class_accuracy": path}.
    """
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, f"{prefix}.json"),
        "confusion_matrix": os.path.join(output_dir, f"{prefix}_confusion_matrix.png"),
        "per_class_accuracy": os.path.join(output_dir, f"{prefix}_per_class_accuracy.png"),
    }
    with open(paths["json"], "w") as f:
        f.write(_report_json(report))
    _plot_confusion_matrix(report, paths["confusion_matrix"])
    _plot_per_class_accuracy(report, paths["per_class_accuracy"])
    return paths


def _report_json(report):
    """Indented JSON, except one line per confusion-matrix row: with the
    default indentation a 100-class matrix would take 10,000 lines."""
    entries = []
    for key, value in report.items():
        if key == "confusion_matrix":
            rows = ",\n    ".join(json.dumps(row) for row in value)
            text = f"[\n    {rows}\n  ]" if value else "[]"
        else:
            text = json.dumps(value, indent=2, allow_nan=False).replace("\n", "\n  ")
        entries.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(entries) + "\n}\n"


def _title(report, what):
    return (f"{what}: {report.get('model') or 'model'} on {report.get('dataset')} "
            f"{report.get('split')} (top-1 {report['top1']:.1%}, "
            f"{report['num_examples']} examples)")


def _tick_font_size(num_classes):
    return 9 if num_classes <= MAX_ANNOTATED_CLASSES else max(4, 9 - num_classes // 20)


def _plot_confusion_matrix(report, path):
    counts = np.asarray(report["confusion_matrix"], dtype=np.int64)
    names = report["label_names"]
    n = len(names)
    support = counts.sum(axis=1, keepdims=True)
    # Row-normalised so that rare classes are as visible as common ones; a
    # class without examples stays blank rather than dividing by zero.
    fractions = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)

    size = max(6.0, 0.45 * n + 2.5) if n <= MAX_ANNOTATED_CLASSES else max(10.0, 0.16 * n + 3)
    figure = new_figure(size + 1.5, size)
    ax = figure.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    font = _tick_font_size(n)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=font)
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(_title(report, "Confusion matrix"), fontsize=10)
    if n <= MAX_ANNOTATED_CLASSES:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if fractions[i, j] > 0.5 else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _plot_per_class_accuracy(report, path):
    names = report["label_names"]
    accuracies = [report["per_class_accuracy"].get(name) for name in names]
    n = len(names)
    figure = new_figure(max(6.0, 0.3 * n + 2), 4.5)
    ax = figure.add_subplot()
    heights = [0.0 if a is None else a for a in accuracies]
    bars = ax.bar(range(n), heights, color="tab:blue")
    ax.axhline(report["top1"], color="tab:red", linestyle="--", linewidth=1,
               label=f"overall top-1 {report['top1']:.1%}")
    for index, accuracy in enumerate(accuracies):
        if accuracy is None:
            # A zero-height bar would read as 0% accuracy.
            bars[index].set_visible(False)
            ax.text(index, 0.02, "no data", ha="center", va="bottom", rotation=90, fontsize=7,
                    color="gray")
        elif n <= MAX_ANNOTATED_CLASSES:
            ax.text(index, accuracy + 0.01, f"{accuracy:.0%}", ha="center", va="bottom",
                    fontsize=7)
    ax.set_xticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=_tick_font_size(n))
    ax.set_xlim(-0.6, n - 0.4)
    # Headroom above 100% keeps the legend off the bars and their labels.
    ax.set_ylim(0, 1.22)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.set_title(_title(report, "Per-class accuracy"), fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
