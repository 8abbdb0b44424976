"""Fine-tuning a pretrained checkpoint on another dataset.

    from zoo import data, pretrained
    from zoo.training import finetune
    train = data.load("../shared/data/cifar100_partial.npz", "train")
    test = data.load("../shared/data/cifar100_partial.npz", "test")
    result = finetune.finetune("hamiltonian-74-cifar10", train, test, output_dir="runs/ft")
    print(result.report["top1"])                      # test top-1, float32
    model = pretrained.load_finetuned("runs/ft")      # the same model, from the files

`train` may also be the dataset itself (a tfds name, .npz path or image
folder): `finetune.finetune("hamiltonian-74-cifar10", "cifar100", data_dir=...)`.

`finetune` takes the pretrained body (`zoo.load(name, include_top=False,
pooling="avg")`), puts a new softmax classifier on it with one output per
class of the data, and trains in two phases:

  1. head: the backbone is frozen (`trainable=False`) and runs in inference
     mode, so its batch-norm statistics stay those of the checkpoint; only the
     new classifier learns (`head_epochs` epochs at `head_learning_rate`);
  2. all: every layer trains (`epochs` epochs at the lower `learning_rate`),
     batch normalisation on batch statistics as in ordinary training.

With `from_scratch=True` the same architecture and head start from a random
initialisation and all layers train for `head_epochs + epochs` epochs: the
comparison that says what the pretrained weights are worth.

Images are converted to what the parent takes: resized (bilinear,
antialiased) to its input size, grayscale repeated to RGB, an alpha channel
dropped (`prepare_images`; use it too on images given to the loaded model).

Defaults, and why:
  * head_epochs=5, epochs=30, batch_size=64: on a small dataset (about a
    thousand images, as ../shared/data/cifar100_partial.npz) that is some 17
    steps an epoch, 600 in all, a few minutes a run on a 2-core CPU;
  * SGD with Nesterov momentum 0.9, a cosine decay of each phase's learning
    rate to 0, one epoch of linear warm-up before the phases that train the
    backbone (the "cpu" recipe of zoo.training, which trained the parents);
  * head_learning_rate=0.1: a new linear classifier on fixed features takes
    the recipe's full rate;
  * learning_rate=0.01 when fine-tuning (a tenth: large steps would undo the
    pretrained features in the first epochs), 0.1 from scratch (the rate the
    parents were trained with: a random network needs it);
  * weight_decay and smoothness_decay: those the parent checkpoint was
    trained with (its manifest entry's recipe and overrides; the "cpu"
    recipe's 5e-4 and 2e-4 where the entry does not say). A regulariser the
    weights were not trained under pulls them toward its own optimum: the
    smoothness term of Eq. 22 at 2e-4 on the shipped Hamiltonian-74, trained
    without it, added 4.2 to a training loss whose cross-entropy was 1.05 in
    a one-epoch fine-tune (tests/test_finetune.py's);
  * float32 (mixed_precision=False) so that the metrics are those of the
    model `load_finetuned` gives; reversible=False (plain autodiff), which
    the "cpu" recipe measured faster on CPU with the same gradients;
  * the random crops and flips of zoo.data.train_dataset in both phases.

The test split is evaluated after every epoch (`validation_freq`) for the
curves only: the weights reported and saved are those of the last epoch,
never the epoch that did best on the test split (that would be selecting on
the test set).

With an `output_dir` the run writes:

    finetuned.weights.h5        the weights (Keras weights-only HDF5)
    model_card.json, model_card.md   the parent checkpoint (name, weights file,
                                sha256, its metrics), the fine-tuned metrics
                                with split and number of images, the training
                                record (phases, epochs, times, hardware, commit)
    metrics.json, metrics.csv   one row per epoch, both phases
    results.json                the run's summary
    eval.json, eval_*.png       the test report (zoo.evaluation)
    curves.png                  loss and accuracy per epoch

A run does not resume; start it again into an empty directory.
"""

import dataclasses
import json
import os
import time
from typing import List, Optional

import keras
import numpy as np

from zoo import data as zdata
from zoo import evaluation, model_cards, provenance
from zoo.data.datasets import find as find_dataset
from zoo.errors import FinetuneError
from zoo.files import atomic_save_weights, atomic_write
from zoo.models.backbone import BACKBONE_LAYER, HEAD_LAYER, POOLING, assemble
from zoo.plotting import plot_curves
from zoo.pretrained import manifest
from zoo.pretrained.finetuned import (
    CARD_FORMAT_VERSION,
    CARD_JSON,
    CARD_MD,
    WEIGHTS_FILE,
    build_backbone,
    finetuned_model_args,
    rebuild_classifier,
)
from zoo.references import CITATIONS
from zoo.training.callbacks import EpochLog
from zoo.training.config import RECIPES, dtype_policy
from zoo.training.loop import fit_epoch
from zoo.training.schedules import WarmupCosine


_CPU = RECIPES["cpu"]
HEAD_EPOCHS = 5
EPOCHS = 30
BATCH_SIZE = 64
HEAD_LEARNING_RATE = _CPU.learning_rate
LEARNING_RATE = _CPU.learning_rate / 10
SCRATCH_LEARNING_RATE = _CPU.learning_rate
WEIGHT_DECAY = _CPU.weight_decay
SMOOTHNESS_DECAY = _CPU.smoothness_decay
MOMENTUM = _CPU.momentum
NESTEROV = _CPU.nesterov
WARMUP_EPOCHS = _CPU.warmup_epochs

# Top-k accuracy is reported with this k, for datasets of more classes.
TOP_K = 5


def set_backbone_trainable(model, trainable):
    """Freezes (False) or unfreezes the backbone; compile the model afterwards."""
    model.get_layer(BACKBONE_LAYER).freeze(not trainable)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load_splits(train, test, data_dir, seed, skip_unreadable=False):
    """(train split, test split) from Splits or dataset names/paths."""
    try:
        if isinstance(train, zdata.Split):
            train_split = train
            if test is None:
                train_split, test_split = zdata.holdout(train, zdata.HOLDOUT_FRACTION, seed)
        elif test is None:
            train_split, test_split = zdata.load_train_and_test(
                os.fspath(train), data_dir, seed, skip_unreadable)
        else:
            train_split = zdata.load(train, "train", data_dir, skip_unreadable=skip_unreadable)
        if test is not None:
            test_split = test if isinstance(test, zdata.Split) else zdata.load(
                test, "test", data_dir, skip_unreadable=skip_unreadable)
    except KeyError as error:  # a .npz without the split's arrays
        raise FinetuneError(error.args[0] if error.args else str(error)) from error
    return train_split, test_split


def _check_classes(train, test):
    """Both splits on one list of classes; returns test with train's names."""
    classes = train.num_classes
    for split in (train, test):
        if len(split) == 0:
            raise FinetuneError(f"The {split.split} split of {split.name!r} has no images.")
    present = np.unique(train.labels)
    if classes < 2 or len(present) < 2:
        raise FinetuneError(
            f"The training split of {train.name!r} ({train.source}) has "
            f"{len(present)} class(es) in its labels and {classes} class name(s); a "
            "classifier needs at least two.")
    if list(test.label_names) != list(train.label_names):
        # A .npz without label names gets "0".."max label" per split, so a
        # test split that lacks the last classes has a shorter list.
        shorter = list(train.label_names[:test.num_classes])
        if test.num_classes > classes or list(test.label_names) != shorter:
            raise FinetuneError(
                f"The training and test splits have different classes "
                f"({train.num_classes}: {list(train.label_names)[:5]}... vs "
                f"{test.num_classes}: {list(test.label_names)[:5]}...).")
        test = dataclasses.replace(test, label_names=list(train.label_names))
    for split in (train, test):
        if split.labels.min() < 0 or split.labels.max() >= classes:
            raise FinetuneError(
                f"The {split.split} split of {split.name!r} has labels from "
                f"{split.labels.min()} to {split.labels.max()}, outside 0..{classes - 1}.")
    return test


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
@dataclasses.dataclass
class FinetuneResult:
    """What `finetune` returns.

    model: the fine-tuned keras.Model (float32; the one `load_finetuned` gives).
    report: the test split's `zoo.evaluation.evaluate` report.
    card: the model card (the dict written to model_card.json).
    history: one dict per epoch (phase, losses, accuracies, learning rate, time).
    output_dir: where the files went, or None.
    """

    model: keras.Model
    report: dict
    card: dict
    history: List[dict]
    output_dir: Optional[str]


def _compile(model, learning_rate, steps, warmup_steps, classes):
    optimizer = keras.optimizers.SGD(
        WarmupCosine(learning_rate, steps, warmup_steps),
        momentum=MOMENTUM, nesterov=NESTEROV)
    # Keras' `loss` adds the weight-decay penalties (model.losses) to the
    # cross-entropy, so the log also shows the cross-entropy alone: the figure
    # the final report and the card give. Top-5 means nothing with 5 classes
    # or fewer, so it is logged only above that.
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
               keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")]
    if classes > TOP_K:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(TOP_K, name=f"top{TOP_K}"))
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=metrics)


def _run_phase(model, phase, epochs, first_epoch, total_epochs, learning_rate, warmup,
               train, eval_ds, validation_freq, batch_size, seed, rows, output_dir, callbacks,
               verbose):
    """Trains `epochs` epochs from a fresh optimizer; returns wall seconds."""
    steps_per_epoch = zdata.steps_per_epoch(len(train), batch_size)
    steps = epochs * steps_per_epoch
    # Recompiling after a change of `trainable` is what makes Keras trace a
    # train step over the new set of trainable weights.
    _compile(model, learning_rate, steps, int(round(warmup * steps_per_epoch)),
             model.output_shape[-1])
    offset = rows[-1]["step"] if rows else 0
    log = EpochLog(rows, output_dir, batch_size, phase=phase, step_offset=offset)
    start = time.perf_counter()
    for epoch in range(first_epoch, first_epoch + epochs):
        # The epoch number (not the phase's) seeds order and augmentation, so
        # the two phases see different crops.
        validate = validation_freq and (
            (epoch + 1) % validation_freq == 0 or epoch + 1 == total_epochs)
        fit_epoch(model, train, epoch=epoch, total_epochs=total_epochs, batch_size=batch_size,
                  seed=seed, validation_data=eval_ds if validate else None,
                  callbacks=[log, *callbacks], verbose=verbose,
                  advice=f"In the {phase} phase: try a lower learning rate (now {learning_rate:g}) "
                         "or float32.")
    return time.perf_counter() - start


def parent_regularisation(entry, weight_decay=None, smoothness_decay=None):
    """The weight and smoothness decay a fine-tune of the checkpoint `entry`
    (a manifest entry) uses: those given, else those its weights were trained
    with (the run's overrides, then its recipe's settings), else the "cpu"
    recipe's."""
    trained = model_cards.trained_settings(entry.get("training") or {})
    if weight_decay is None:
        weight_decay = trained.get("weight_decay", WEIGHT_DECAY)
    if smoothness_decay is None:
        smoothness_decay = trained.get("smoothness_decay", SMOOTHNESS_DECAY)
    return float(weight_decay), float(smoothness_decay)


def _check_arguments(head_epochs, epochs, batch_size, head_learning_rate, learning_rate,
                     weight_decay, smoothness_decay, from_scratch, validation_freq):
    for name, value in (("head_epochs", head_epochs), ("epochs", epochs)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise FinetuneError(f"{name} must be a non-negative integer, got {value!r}.")
    if head_epochs + epochs < 1:
        raise FinetuneError("Nothing to train: head_epochs and epochs are both 0.")
    if not isinstance(validation_freq, (int, np.integer)) or validation_freq < 0:
        raise FinetuneError(f"validation_freq must be a non-negative integer, got "
                            f"{validation_freq!r}.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise FinetuneError(f"batch_size must be a positive integer, got {batch_size!r}.")
    rates = [("learning_rate", learning_rate)]
    if not from_scratch:
        rates.append(("head_learning_rate", head_learning_rate))
    for name, value in rates:
        if not value > 0:
            raise FinetuneError(f"{name} must be positive, got {value!r}.")
    for name, value in (("weight_decay", weight_decay), ("smoothness_decay", smoothness_decay)):
        if value is not None and not value >= 0:
            raise FinetuneError(f"{name} must be non-negative, got {value!r}.")


def finetune(model, train, test=None, *, head_epochs=HEAD_EPOCHS, epochs=EPOCHS,
             batch_size=BATCH_SIZE, head_learning_rate=HEAD_LEARNING_RATE, learning_rate=None,
             weight_decay=None, smoothness_decay=None, seed=0,
             mixed_precision=False, from_scratch=False, reversible=False, data_dir=None,
             validation_freq=1, output_dir=None, overwrite=False, callbacks=(), verbose=1,
             command=None, skip_unreadable=False):
    """Fine-tunes the pretrained model `model` on a dataset (see the module
    docstring for the phases and the defaults).

    Args:
      model: a pretrained model name (`zoo.list_models(pretrained=True)`).
      train: a `zoo.data.Split`, or a dataset (tfds name, .npz path or image
        folder) whose "train" split is used.
      test: the split to evaluate on: a Split, a dataset whose "test" split is
        used, or None: the "test" split of `train`'s dataset, or a stratified
        10% held out of the training images where there is none.
      head_epochs: epochs of phase one (only the new classifier trains).
      epochs: epochs of phase two (all layers); 0 trains the head only.
      batch_size, seed: as in zoo.training.
      head_learning_rate: peak learning rate of phase one.
      learning_rate: peak learning rate of phase two (default 0.01; from
        scratch 0.1 for all epochs).
      weight_decay, smoothness_decay: as in zoo.training (the new classifier
        gets the weight decay too); None: the parent checkpoint's
        (`parent_regularisation`).
      mixed_precision: train with mixed_bfloat16 (evaluation is float32).
      from_scratch: same architecture and head, random initialisation, all
        layers trained for head_epochs + epochs epochs.
      reversible: backpropagate through the units by reconstruction.
      data_dir: directory of local datasets (zoo.data.load).
      validation_freq: evaluate the test split every this many epochs (and
        after the last) for the curves; 0: only the final evaluation.
      output_dir: where to write weights, model card and metrics (None: no
        files). It must not hold a fine-tuned model already unless overwrite.
      callbacks: extra Keras callbacks, passed to every epoch's `fit`.
      verbose: Keras verbosity.
      command: the command line, recorded in the card.
      skip_unreadable: leave unreadable files of image folders out (counted
        in a warning) instead of stopping at the first.

    Returns:
      A FinetuneResult (model, report, card, history, output_dir).

    Raises:
      FinetuneError (a ValueError): unknown model, unusable arguments or
        data (one class, unconvertible channels, splits with other classes,
        batch larger than the training set), an output_dir already used.
      zoo.data.DataNotFoundError: the dataset is nowhere to be found.
      zoo.pretrained.WeightsNotFoundError, ChecksumError: parent weights.
      zoo.training.TrainingDiverged: the loss stopped being finite.
    """
    code_commit = provenance.git_commit()
    wall_start = time.perf_counter()
    if learning_rate is None:
        learning_rate = SCRATCH_LEARNING_RATE if from_scratch else LEARNING_RATE
    _check_arguments(head_epochs, epochs, batch_size, head_learning_rate, learning_rate,
                     weight_decay, smoothness_decay, from_scratch, validation_freq)
    try:
        parent = manifest.info(model)  # before any data is read
    except ValueError as error:
        raise FinetuneError(str(error)) from error
    weight_decay, smoothness_decay = parent_regularisation(parent, weight_decay, smoothness_decay)
    if output_dir is not None:
        output_dir = os.fspath(output_dir)
        if not overwrite and os.path.exists(os.path.join(output_dir, CARD_JSON)):
            raise FinetuneError(f"{output_dir} already holds a fine-tuned model; use another "
                                "output directory or overwrite=True.")
    input_shape = tuple(parent["input"]["shape"])

    train_split, test_split = load_splits(train, test, data_dir, seed, skip_unreadable)
    test_split = _check_classes(train_split, test_split)
    original_shape = train_split.image_shape
    train_split, conversion = zdata.prepare_split(train_split, input_shape)
    test_split, _ = zdata.prepare_split(test_split, input_shape)
    if batch_size > len(train_split):
        raise FinetuneError(f"batch_size {batch_size} is larger than the {len(train_split)} "
                            "training images.")
    classes = train_split.num_classes
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)

    policy = dtype_policy(mixed_precision)
    builder = dict(weight_decay=weight_decay, smoothness_decay=smoothness_decay,
                   reversible=reversible, dtype=policy)
    rows, phases = [], []
    keras.utils.set_random_seed(seed)
    backbone = build_backbone(parent["architecture"], input_shape,
                              None if from_scratch else parent["name"], **builder)
    net = assemble(backbone, classes, weight_decay)
    eval_ds = zdata.eval_dataset(test_split, 100)
    common = dict(train=train_split, eval_ds=eval_ds, validation_freq=validation_freq,
                  batch_size=batch_size, seed=seed,
                  rows=rows, output_dir=output_dir, callbacks=list(callbacks),
                  verbose=verbose, total_epochs=head_epochs + epochs)
    if from_scratch:
        plan = [("scratch", head_epochs + epochs, True, learning_rate, WARMUP_EPOCHS)]
    else:
        plan = [("head", head_epochs, False, head_learning_rate, 0.0),
                ("all", epochs, True, learning_rate, WARMUP_EPOCHS)]
    first = 0
    for phase, count, backbone_trainable, rate, warmup in plan:
        if count == 0:
            continue
        set_backbone_trainable(net, backbone_trainable)
        seconds = _run_phase(net, phase, count, first, learning_rate=rate, warmup=warmup,
                             **common)
        phases.append({
            "phase": phase, "epochs": count, "first_epoch": first + 1,
            "trainable": "all layers" if backbone_trainable else "classifier only",
            "batch_norm": "batch statistics" if backbone_trainable
            else "inference (checkpoint statistics)",
            "learning_rate": rate, "warmup_epochs": warmup,
            "steps": count * zdata.steps_per_epoch(len(train_split), batch_size),
            "seconds": round(seconds, 1)})
        first += count
    weights = net.get_weights()

    # The evaluated model is the float32 one `load_finetuned` rebuilds, so
    # the card's numbers are those a user reproduces.
    model_args = finetuned_model_args(parent, from_scratch)
    final = rebuild_classifier(parent["architecture"], input_shape, classes, reversible,
                               model_args=model_args)
    final.set_weights(weights)
    report = evaluation.evaluate(final, test_split)
    report["model"] = final.name

    spec = dict(parent=parent, from_scratch=from_scratch, classes=classes,
                label_names=list(train_split.label_names), input_shape=input_shape,
                original_shape=original_shape, conversion=conversion, train=train_split,
                test=test_split, report=report, phases=phases, batch_size=batch_size,
                weight_decay=weight_decay, smoothness_decay=smoothness_decay, seed=seed,
                precision=policy, reversible=reversible, code_commit=code_commit,
                command=command, model=final, model_args=model_args)
    card = make_card(**spec)
    card["training"]["wall_seconds"] = round(time.perf_counter() - wall_start, 1)
    if output_dir is not None:
        _write_outputs(final, card, report, rows, output_dir)
    return FinetuneResult(final, report, card, rows, output_dir)




def _write_outputs(model, card, report, rows, output_dir):
    path = os.path.join(output_dir, WEIGHTS_FILE)
    atomic_save_weights(model, path)
    card["weights"].update(sha256=manifest.sha256(path), bytes=os.path.getsize(path))
    evaluation.save_report(report, output_dir, prefix="eval")
    if rows:
        plot_curves(rows, os.path.join(output_dir, "curves.png"))
    results = {
        "model": card["name"], "parent": card["parent"]["name"],
        "from_scratch": card["from_scratch"], "dataset": card["dataset"]["name"],
        "train_examples": card["dataset"]["train_images"],
        "test_examples": card["metrics"]["images"],
        "test": {k: card["metrics"][k] for k in ("top1", "top5", "loss")},
        "epochs": card["training"]["epochs"], "phases": card["training"]["phases"],
        "wall_seconds": card["training"]["wall_seconds"],
        "config": {k: card["training"][k] for k in (
            "batch_size", "weight_decay", "smoothness_decay", "seed", "precision", "engine")},
        "parameters": card["parameters"]["total"],
        "code_commit": card["training"]["code_commit"],
        "hardware": card["training"]["hardware"],
    }
    atomic_write(os.path.join(output_dir, "results.json"),
                           json.dumps(results, indent=2))
    # The card goes last: its presence marks a finished run.
    atomic_write(os.path.join(output_dir, CARD_MD), model_cards.render_finetuned_card(card))
    atomic_write(os.path.join(output_dir, CARD_JSON), json.dumps(card, indent=2))


# --------------------------------------------------------------------------
# The model card
# --------------------------------------------------------------------------
def make_card(*, parent, from_scratch, classes, label_names, input_shape, original_shape,
              conversion, train, test, report, phases, batch_size, weight_decay,
              smoothness_decay, seed, precision, reversible, code_commit, command, model,
              model_args):
    """The card of a fine-tuned model as a dict (see `zoo.model_cards.render_finetuned_card`)."""
    parent_metrics = {k: parent["metrics"][k] for k in ("split", "images", "top1", "top5", "loss")
                      if k in parent["metrics"]}
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    kind = "scratch" if from_scratch else "finetuned"
    return {
        "format_version": CARD_FORMAT_VERSION,
        "name": f"{parent['architecture'] if from_scratch else parent['name']}-{kind}-{train.name}",
        "from_scratch": from_scratch,
        "initialization": ("random (seed {seed}), the architecture and input size of the parent"
                           .format(seed=seed) if from_scratch
                           else "the parent's pretrained weights; new classifier"),
        "parent": {
            "name": parent["name"],
            "architecture": parent["architecture"],
            "weights": {"file": parent["weights"]["file"], "sha256": parent["weights"]["sha256"]},
            "dataset": parent["dataset"]["name"],
            "metrics": parent_metrics,
            "weights_used": not from_scratch,
        },
        "architecture": parent["architecture"],
        # Builder arguments of the body (a Hamiltonian-74 trained at h = 0.3),
        # so that load_finetuned rebuilds the network that was trained.
        "model_args": model_args,
        "builder_args": {"include_top": False, "pooling": POOLING,
                         "input_shape": list(input_shape)},
        "head": {"layer": HEAD_LAYER, "classes": classes, "activation": "softmax"},
        "input": {
            "shape": list(input_shape),
            "dtype": "uint8 or float32",
            "value_range": [0, 255],
            "preprocessing": parent["input"].get("preprocessing"),
            "dataset_shape": list(original_shape),
            "conversion": conversion,
        },
        "labels": [str(n) for n in label_names],
        "parameters": {"total": int(model.count_params()), "trainable": trainable},
        "dataset": {
            "name": train.name, "source": str(train.source),
            "train_split": train.split, "train_images": len(train),
            "test_split": test.split, "test_images": len(test),
        },
        "metrics": {
            "split": test.split, "images": report["num_examples"],
            "top1": report["top1"], "top5": report["top5"], "top5_k": report["top5_k"],
            "loss": round(report["loss"], 4), "precision": "float32",
            "per_class_accuracy": report["per_class_accuracy"],
        },
        "weights": {"file": WEIGHTS_FILE, "format": "Keras 3 weights-only HDF5 (.weights.h5)",
                    "sha256": None, "bytes": None},
        "training": {
            "phases": phases,
            "epochs": sum(p["epochs"] for p in phases),
            "steps": sum(p["steps"] for p in phases),
            "batch_size": batch_size,
            "optimizer": f"SGD, {'Nesterov ' if NESTEROV else ''}momentum {MOMENTUM:g}, cosine "
                         "decay to 0 per phase",
            "augmentation": "random crops after zero padding, random horizontal flips",
            "weight_decay": weight_decay,
            "smoothness_decay": smoothness_decay,
            "seed": seed,
            "precision": precision,
            "engine": "reversible" if reversible else "autodiff",
            "train_seconds": round(sum(p["seconds"] for p in phases), 1),
            "wall_seconds": None,
            "hardware": provenance.hardware(),
            "code_commit": code_commit,
            "command": command,
        },
        "license": parent.get("license"),
        "citations": _citations(parent, train.name),
    }


def _citations(parent, dataset):
    """The parent's citations and the fine-tuning dataset's, once each."""
    cited = list(parent.get("citations", []))
    keys = {c.get("key") for c in cited}
    known = find_dataset(dataset)  # local files may be "<name>_partial"
    for key in known.citations if known else ():
        if key not in keys:
            cited.append({"key": key, "text": CITATIONS[key]})
    return cited
