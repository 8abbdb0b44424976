"""The training loop: `train` runs (or resumes) a whole job, and `fit_epoch`
is the one epoch of `model.fit` that train and fine-tuning both run.

`train(TrainConfig(...))` runs a whole training job into an output directory:

    <output_dir>/
      config.json            the configuration (a resumed run must match it)
      checkpoints/           model + optimizer + progress, for resuming
      tensorboard/           TensorBoard logs
      metrics.csv, metrics.json   one row per epoch
      best.weights.h5        weights of the epoch with the best validation accuracy
      last.weights.h5        weights at the end of training
      curves.png             loss and accuracy curves
      results.json           final evaluation, wall time, throughput, versions

Killing a run and starting the same command again resumes from the last
checkpoint (written every `checkpoint_every` steps and at every epoch end):
the data order and augmentation are functions of (seed, epoch), so the
resumed run sees exactly the batches the interrupted one would have seen.
"""

import dataclasses
import json
import math
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from zoo import data as zdata
from zoo import registry
from zoo.errors import ConfigurationError, TrainingDiverged
from zoo.files import atomic_save_weights, atomic_write
from zoo.plotting import plot_curves
from zoo.provenance import git_commit, hardware, warn_if_bfloat16_is_emulated
from zoo.training.averaging import AverageWeights, WeightAverage
from zoo.training.callbacks import DivergenceGuard, EpochLog, OneEpoch, Progress, StepCheckpoint
from zoo.training.checkpoints import has_checkpoint_entry
from zoo.training.config import (
    FIELDS_ADDED,
    RECIPES,
    SEGMENT_FIELDS,
    architecture_args,
    dtype_policy,
    uses_reversible_engine,
)
from zoo.training.distribute import is_chief, make_strategy, prebuild_for_multi_worker
from zoo.training.losses import SmoothedSparseCrossentropy
from zoo.training.schedules import make_schedule


def fit_epoch(model, split, *, epoch, total_epochs, batch_size, seed, first_batch=0, steps=None,
              validation_data=None, callbacks=(), verbose=1, advice=""):
    """Trains `model` on one epoch of `split`'s seeded pipeline
    (zoo.data.train_dataset), from batch `first_batch` on, for `steps` steps
    (default: to the epoch's end), with one `model.fit`: the loop of both
    `train` and `finetune`. Returns fit's History.

    Each epoch gets its own dataset (a function of seed and epoch, so that a
    run can resume mid-epoch); `fit` is told `total_epochs` only so that its
    progress bar counts them. Raises TrainingDiverged, with `advice` (text,
    or a function giving it) appended, at the first step whose loss is not
    finite.
    """
    guard = DivergenceGuard(epoch, first_batch)
    history = model.fit(
        zdata.train_dataset(split, batch_size, seed, epoch, first_batch),
        epochs=total_epochs, initial_epoch=epoch, steps_per_epoch=steps, shuffle=False,
        validation_data=validation_data, callbacks=[guard, *callbacks, OneEpoch()],
        verbose=verbose)
    if guard.diverged_at:
        e, b, value = guard.diverged_at
        raise TrainingDiverged(
            f"The training loss became {value} at epoch {e + 1}, batch {b} "
            f"(step {int(model.optimizer.iterations.numpy())}); training stopped. "
            f"{advice() if callable(advice) else advice}".rstrip())
    return history


def _check_resumable(config, output_dir):
    path = os.path.join(output_dir, "config.json")
    saved_fields = dataclasses.asdict(config)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        saved = {**FIELDS_ADDED, **saved}
        diff = {k: (saved.get(k), v) for k, v in saved_fields.items()
                if k not in SEGMENT_FIELDS and saved.get(k) != v}
        if diff:
            raise ConfigurationError(
                f"{output_dir} holds a run with a different configuration "
                f"(saved vs now: {diff}). Use another --output_dir or remove it.")
    return saved_fields


def train(config, callbacks=(), stop_at=None, checkpoint_seconds=None, on_checkpoint=None):
    """Runs (or resumes) a training job. Returns the dict written to results.json.

    `callbacks` are extra Keras callbacks. The model is built in the run's
    precision (`dtype=`); Keras' global dtype policy is left as it is.
    `deterministic=True` enables TensorFlow op determinism for the rest of
    the process.

    For runs longer than a session: `stop_at` (a time.time() value, or a
    function returning one, read after every step) saves a checkpoint and
    returns after the first step past it, with results["finished"] False and
    nothing evaluated or written but the checkpoint (at an epoch's last step,
    after the epoch's validation and save); `checkpoint_seconds` also saves
    every that many seconds; `on_checkpoint(path)` is called after every
    checkpoint is written. With label smoothing the logged loss is the
    smoothed one.
    """
    resolved = config.resolved()
    warn_if_bfloat16_is_emulated(resolved.mixed_precision)
    return _train(resolved, callbacks, stop_at, checkpoint_seconds, on_checkpoint)


def resolve_weights(warm_start):
    """The weights file of a warm start: a path, or a pretrained name."""
    if os.path.exists(warm_start):
        return warm_start
    from zoo import pretrained

    return pretrained.weights_path(warm_start)


def load_splits(config):
    """Training and validation splits as the configuration asks."""
    train_split, test_split = zdata.load_train_and_test(
        config.dataset, config.data_dir, config.seed, config.skip_unreadable)
    if config.limit_train:
        train_split = train_split.subset(np.arange(min(config.limit_train, len(train_split))))
    if config.holdout:
        if config.holdout >= len(train_split):
            raise ValueError(f"holdout={config.holdout} leaves no training images of "
                             f"{len(train_split)}.")
        # A fixed seed, not the run's: runs with other seeds validate on the same images.
        train_split, test_split = zdata.holdout(train_split, config.holdout / len(train_split), 0)
    if config.limit_eval:
        test_split = test_split.subset(np.arange(min(config.limit_eval, len(test_split))))
    return zdata.stratified_subset(train_split, config.fraction, config.seed), test_split


def _train(config, callbacks, stop_at=None, checkpoint_seconds=None, on_checkpoint=None):
    # The code that trains is the code at the start (the checkout may change during a long run).
    code_commit = git_commit()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    output_dir = config.output_dir if chief else tempfile.mkdtemp(prefix="zoo-worker-")
    config_fields = _check_resumable(config, output_dir)
    # The data before the output directory: bad data leaves no directory behind.
    train_split, test_split = load_splits(config)
    os.makedirs(output_dir, exist_ok=True)
    if chief:
        atomic_write(os.path.join(output_dir, "config.json"), json.dumps(config_fields, indent=2))

    steps_per_epoch = zdata.steps_per_epoch(len(train_split), config.batch_size)
    total_steps = config.steps or config.epochs * steps_per_epoch
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    schedule_steps = (config.schedule_epochs * steps_per_epoch if config.schedule_epochs
                      else total_steps)

    reversible = uses_reversible_engine(config)
    keras.utils.set_random_seed(config.seed)
    previous = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
    with strategy.scope():
        model = registry.build(
            config.model, classes=train_split.num_classes, input_shape=train_split.image_shape,
            reversible=reversible, weight_decay=config.weight_decay,
            smoothness_decay=config.smoothness_decay,
            synchronized_bn=strategy.num_replicas_in_sync > 1,
            dtype=dtype_policy(config.mixed_precision), **architecture_args(config))
        if config.warm_start and not previous:
            # Before compiling, so the file (weights only) meets no optimizer state.
            model.load_weights(resolve_weights(config.warm_start))
        recipe = RECIPES[config.recipe]
        optimizer = keras.optimizers.SGD(
            make_schedule(config, steps_per_epoch, schedule_steps),
            momentum=recipe.momentum, nesterov=recipe.nesterov)
        model.compile(
            optimizer=optimizer,
            loss=(SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
                  else keras.losses.SparseCategoricalCrossentropy()),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                     keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
        )
        optimizer.build(model.trainable_variables)
        progress = Progress()
        tracked = dict(model=model, optimizer=optimizer, epoch=progress.epoch,
                       batch=progress.batch, best=progress.best, seconds=progress.seconds,
                       # Every weight by its place in model.weights: the object
                       # graph under `model` misses the batch-norm statistics of
                       # layers nested in zoo blocks (ResNet, RevNet), and the
                       # optimizer reaches only the trainable weights.
                       weights=list(model.weights))
        average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
        if average is not None:
            tracked["weight_average"] = average.trackable()
        for name in ("seconds", "weights"):
            if previous and not has_checkpoint_entry(previous, name):
                # Written before this entry was checkpointed: resume without it.
                del tracked[name]
        checkpoint = tf.train.Checkpoint(**tracked)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(output_dir, "checkpoints"),
                                         max_to_keep=2)

    def save(step):
        path = manager.save(checkpoint_number=step)
        if on_checkpoint is not None and chief:
            on_checkpoint(path)
        return path
    resumed_from = None
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        resumed_from = manager.latest_checkpoint
        if chief:
            print(f"Resuming from {resumed_from}: epoch {int(progress.epoch.numpy()) + 1}, "
                  f"batch {int(progress.batch.numpy())}, step {int(optimizer.iterations.numpy())}.")

    metrics_json = os.path.join(output_dir, "metrics.json")
    rows = []
    if os.path.exists(metrics_json):
        with open(metrics_json) as f:
            rows = [r for r in json.load(f) if r["epoch"] <= int(progress.epoch.numpy())]
    best_path = os.path.join(output_dir, "best.weights.h5")
    epoch_log = EpochLog(rows, output_dir, config.batch_size, progress=progress,
                         best_path=best_path, chief=chief)
    tensorboard = keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard"))
    eval_ds = zdata.eval_dataset(test_split, config.batch_size)
    # The average is validated each epoch only on held-out training images:
    # on the test split it would only tempt a choice there, and costs time.
    averaging = [] if average is None else [
        AverageWeights(average, eval_ds if config.holdout else None)]

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        prebuild_for_multi_worker(model, strategy, train_split)

    start = time.perf_counter()
    step = int(optimizer.iterations.numpy())

    def unfinished():
        """The result of a run stopped for time: its checkpoint resumes it."""
        return {"model": config.model, "dataset": config.dataset, "finished": False,
                "steps": int(optimizer.iterations.numpy()), "total_steps": total_steps,
                "checkpoint": manager.latest_checkpoint,
                "wall_seconds_this_session": round(time.perf_counter() - start, 1)}

    # The validation that ends the last epoch is the final evaluation (same
    # weights, data and metrics): kept so the test set is not run twice.
    last_validation = None
    while step < total_steps:
        epoch, first_batch = int(progress.epoch.numpy()), int(progress.batch.numpy())
        steps_now = min(steps_per_epoch - first_batch, total_steps - step)
        saver = StepCheckpoint(save, progress, epoch, first_batch, config.checkpoint_every,
                               checkpoint_seconds, stop_at, last_batch=first_batch + steps_now)
        validate = (epoch + 1) % config.validation_freq == 0 or step + steps_now >= total_steps
        history = fit_epoch(
            model, train_split, epoch=epoch, total_epochs=total_epochs,
            batch_size=config.batch_size, seed=config.seed, first_batch=first_batch,
            steps=steps_now, validation_data=eval_ds if validate else None,
            # The average is updated before the saver checkpoints the step.
            callbacks=[*averaging, saver, epoch_log, tensorboard, *callbacks],
            verbose=config.verbose,
            advice=lambda: (
                (f"The last good checkpoint is {manager.latest_checkpoint}."
                 if manager.latest_checkpoint else "No checkpoint had been written yet.")
                + " Try a lower --learning_rate, float32 instead of mixed precision, "
                "or check the data."))
        step = int(optimizer.iterations.numpy())
        if saver.stopped_for_time:
            return unfinished()
        last_validation = ({k[len("val_"):]: v[-1] for k, v in history.history.items()
                            if k.startswith("val_")} if validate else None) or None
        progress.epoch.assign(epoch + 1)
        progress.batch.assign(0)
        progress.seconds.assign(0.0)
        save(step)
        if step < total_steps and saver.deadline() is not None and time.time() >= saver.deadline():
            return unfinished()
    wall = time.perf_counter() - start

    final = last_validation or model.evaluate(eval_ds, verbose=0, return_dict=True)
    results = {
        "model": config.model, "dataset": config.dataset, "finished": True,
        "train_examples": len(train_split),
        "test_examples": len(test_split), "steps": step, "epochs": total_epochs,
        "test": {k: float(v) for k, v in final.items()},
        "best_val_accuracy": float(progress.best.numpy()),
        "wall_seconds_this_session": round(wall, 1), "resumed_from": resumed_from,
        "config": config_fields, "reversible_engine": reversible,
        "parameters": model.count_params(),
        "code_commit": code_commit, "hardware": hardware(),
        "replicas": strategy.num_replicas_in_sync, "validation_split": test_split.split,
    }
    if chief:
        if average is not None:
            average.swap()
            atomic_save_weights(model, os.path.join(output_dir, "ema.weights.h5"))
            average.swap()
        atomic_save_weights(model, os.path.join(output_dir, "last.weights.h5"))
        if rows:
            plot_curves(rows, os.path.join(output_dir, "curves.png"))
        atomic_write(os.path.join(output_dir, "results.json"), json.dumps(results, indent=2))
    return results
