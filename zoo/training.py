"""Training: recipes, learning-rate schedules, resumable runs, strategies.

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

import csv
import dataclasses
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from zoo import data as zdata
from zoo import precision, registry
from zoo.runtime import ONEDNN_ENV
from zoo.layers import ops
from zoo.plotting import new_figure


# Validation share held out of the training split when a dataset has no test split.
HOLDOUT_FRACTION = 0.1

# --------------------------------------------------------------------------
# Recipes and configuration
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Recipe:
    """Optimisation settings of a named recipe.

    `epochs` or `steps` bounds the run (steps wins when both are set).
    `schedule`: "step" (divide by 10 at `decay_epochs`) or "cosine" (linear
    warm-up for `warmup_epochs`, then cosine decay to 0).
    """

    name: str
    batch_size: int
    learning_rate: float
    schedule: str
    weight_decay: float
    smoothness_decay: float
    epochs: Optional[int] = None
    steps: Optional[int] = None
    decay_epochs: Sequence[int] = ()
    warmup_epochs: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    # None: bfloat16 where the machine computes it natively (a GPU, or a CPU
    # with AVX512-BF16/AMX), float32 elsewhere (auto_mixed_precision).
    mixed_precision: Optional[bool] = False
    reversible: bool = True
    # Cross-entropy against (1 - ε)·one-hot + ε/classes (Szegedy et al. 2016).
    label_smoothing: float = 0.0
    # Decay of an exponential moving average of the weights kept beside them
    # (None: none); its weights are saved as ema.weights.h5 and, on a
    # held-out validation split, validated each epoch as val_ema_accuracy.
    ema_decay: Optional[float] = None


RECIPES = {
    # Chang et al. (2018), Section 4: SGD with momentum 0.9, batch 100, lr 0.1
    # divided by 10 at epochs 80, 120 and 160, 80k steps, weight decay and
    # smoothness decay 2e-4.
    "paper": Recipe("paper", batch_size=100, learning_rate=0.1, schedule="step",
                    weight_decay=2e-4, smoothness_decay=2e-4, steps=80_000,
                    decay_epochs=(80, 120, 160)),
    # The paper's STL-10 settings: batch 128, decay at epochs 60, 80, 100,
    # 20k steps, weight decay 5e-4, smoothness decay 3e-4.
    "paper-stl10": Recipe("paper-stl10", batch_size=128, learning_rate=0.1, schedule="step",
                          weight_decay=5e-4, smoothness_decay=3e-4, steps=20_000,
                          decay_epochs=(60, 80, 100)),
    # What fits in about 150 minutes on a 2-core CPU for Hamiltonian-74 on
    # CIFAR-10: bfloat16 compute and plain autodiff (measured 206 img/s vs
    # 163 img/s for the reversible engine, batch 100; the gradients are the
    # same and memory is no constraint at this size), a short warm-up and a
    # cosine decay (short schedules converge faster with it than with step
    # decay), Nesterov momentum, stronger weight decay. 30 epochs at about
    # 4.3 minutes each. The precision follows the machine (None): bfloat16
    # where it is native, float32 where it would be emulated (5-8 img/s
    # against 43-60 on an AVX2-only AMD EPYC), so no recipe picks emulated
    # bfloat16 silently.
    "cpu": Recipe("cpu", batch_size=128, learning_rate=0.1, schedule="cosine",
                  weight_decay=5e-4, smoothness_decay=2e-4, epochs=30, warmup_epochs=1.0,
                  nesterov=True, mixed_precision=None, reversible=False),
    # The training campaign's base (zoo.campaign): the cpu recipe with the
    # precision chosen by the machine (bfloat16 only where it is native or on
    # a GPU; emulated bfloat16 ran 5-8 img/s against 43-60 in float32 on an
    # AVX2-only CPU). What the recipe pilots settle (label smoothing, weight
    # average, batch size, peak rate) the campaign's plan sets per run.
    "campaign": Recipe("campaign", batch_size=128, learning_rate=0.1, schedule="cosine",
                       weight_decay=5e-4, smoothness_decay=2e-4, epochs=30, warmup_epochs=1.0,
                       nesterov=True, mixed_precision=None, reversible=False),
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run.

    Fields left as None take the recipe's value. `fraction` trains on a
    stratified fraction of the training split. `checkpoint_every` is in steps.
    `skip_unreadable` leaves unreadable files of an image folder out (counted
    in a warning) instead of stopping at the first.
    `model_args` are further builder arguments of the architecture (e.g.
    {"h": 1.0} for another step size); with `control_points` they are recorded
    with the run and go into a registered checkpoint's builder_args, so that
    `zoo.load` rebuilds the network that was trained.
    """

    model: str
    output_dir: str
    dataset: Optional[str] = None
    data_dir: Optional[str] = None
    recipe: str = "paper"
    batch_size: Optional[int] = None
    epochs: Optional[int] = None
    steps: Optional[int] = None
    learning_rate: Optional[float] = None
    weight_decay: Optional[float] = None
    smoothness_decay: Optional[float] = None
    mixed_precision: Optional[bool] = None
    reversible: Optional[bool] = None
    label_smoothing: Optional[float] = None
    ema_decay: Optional[float] = None
    control_points: Optional[int] = None
    model_args: Optional[dict] = None
    warm_start: Optional[str] = None
    holdout: Optional[int] = None
    seed: int = 0
    fraction: float = 1.0
    limit_train: Optional[int] = None
    limit_eval: Optional[int] = None
    validation_freq: int = 1
    checkpoint_every: int = 500
    strategy: str = "default"
    deterministic: bool = False
    skip_unreadable: bool = False
    verbose: int = 1

    def resolved(self):
        """A copy with the recipe's values filled in and the run length fixed."""
        if self.recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {self.recipe!r}; choose from {sorted(RECIPES)}.")
        recipe = RECIPES[self.recipe]
        values = dataclasses.asdict(self)
        for field in ("batch_size", "learning_rate", "weight_decay", "smoothness_decay",
                      "mixed_precision", "reversible", "label_smoothing", "ema_decay"):
            if values[field] is None:
                values[field] = getattr(recipe, field)
        if values["mixed_precision"] is None:
            values["mixed_precision"] = auto_mixed_precision()
        if self.epochs is None and self.steps is None:
            values["epochs"], values["steps"] = recipe.epochs, recipe.steps
        if values["dataset"] is None:
            _, dataset = registry.split_name(self.model)
            if dataset is None:
                raise ValueError(
                    f"Give --dataset, or a model name with a dataset suffix (e.g. {self.model}-cifar10).")
            values["dataset"] = dataset
        if values["batch_size"] < 1:
            raise ValueError(f"batch_size must be positive, got {values['batch_size']}.")
        if not 0 <= values["label_smoothing"] < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {values['label_smoothing']}.")
        if values["ema_decay"] is not None and not 0 < values["ema_decay"] < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {values['ema_decay']}.")
        if values["holdout"] is not None and values["holdout"] < 1:
            raise ValueError(f"holdout must be a positive number of images, got {values['holdout']}.")
        _check_model_args(self.model_args)
        return TrainConfig(**values)


def auto_mixed_precision():
    """Whether this machine should train in mixed_bfloat16: on a GPU, or on a
    CPU with native bfloat16. Elsewhere bfloat16 is emulated and several
    times slower than float32 (Hamiltonian-74: 5-8 img/s against 43 on an
    AVX2-only AMD EPYC)."""
    if tf.config.list_physical_devices("GPU"):
        return True
    return bool(native_bfloat16())


def dtype_policy(mixed_precision):
    """The Keras dtype policy of a run with this `mixed_precision` setting."""
    return "mixed_bfloat16" if mixed_precision else "float32"


def uses_reversible_engine(config):
    """Whether a resolved config trains with the reversible engine: it applies
    only where the model's blocks are invertible (not ResNet, not the
    parabolic CNN), whatever `config.reversible` asks for."""
    return bool(config.reversible) and registry.get_entry(config.model).invertible


# Builder arguments that train() derives from the data, the recipe and its own
# fields; model_args may not set them behind its back.
RESERVED_MODEL_ARGS = frozenset({
    "classes", "input_shape", "reversible", "weight_decay", "smoothness_decay",
    "synchronized_bn", "control_points", "weights", "include_top", "pooling",
    "classifier_activation"})


def _check_model_args(model_args):
    if model_args is None:
        return
    if not isinstance(model_args, dict) or not all(isinstance(k, str) for k in model_args):
        raise ValueError(f"model_args must be a dict of builder arguments, got {model_args!r}.")
    reserved = sorted(RESERVED_MODEL_ARGS & set(model_args))
    if reserved:
        raise ValueError(f"model_args may not set {reserved}: they have their own fields "
                         "or come from the dataset.")
    try:
        json.dumps(model_args)
    except TypeError as error:
        raise ValueError(f"model_args must be JSON values (they are recorded with the run): "
                         f"{error}") from error


def architecture_args(config):
    """The builder arguments, beyond the dataset's classes and input shape, that
    shape the trained network: `control_points` and `model_args` of a
    TrainConfig or of the "config" dict a run records."""
    if not isinstance(config, dict):
        config = dataclasses.asdict(config)
    args = dict(config.get("model_args") or {})
    if config.get("control_points") is not None:
        args["control_points"] = config["control_points"]
    return args


# --------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="zoo")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr = base · factor^(number of boundaries passed); boundaries in steps."""

    def __init__(self, base_learning_rate, boundaries, factor=0.1):
        self.base_learning_rate = float(base_learning_rate)
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        passed = tf.zeros((), tf.float32)
        for boundary in self.boundaries:
            passed += tf.cast(step >= boundary, tf.float32)
        return self.base_learning_rate * tf.pow(self.factor, passed)

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "boundaries": self.boundaries,
                "factor": self.factor}


@keras.saving.register_keras_serializable(package="zoo")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 for `warmup_steps`, then cosine decay to 0 at `total_steps`."""

    def __init__(self, base_learning_rate, total_steps, warmup_steps=0):
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = float(max(self.warmup_steps, 1))
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        ramp = tf.minimum((step + 1.0) / warmup, 1.0) if self.warmup_steps else 1.0
        return self.base_learning_rate * ramp * cosine

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps}


def make_schedule(config, steps_per_epoch, total_steps):
    recipe = RECIPES[config.recipe]
    if recipe.schedule == "step":
        return StepDecay(config.learning_rate, [e * steps_per_epoch for e in recipe.decay_epochs])
    if recipe.schedule == "cosine":
        return WarmupCosine(config.learning_rate, total_steps,
                            int(round(recipe.warmup_epochs * steps_per_epoch)))
    raise ValueError(f"Unknown schedule {recipe.schedule!r}.")


# --------------------------------------------------------------------------
# Loss and weight averaging
# --------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="zoo")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of probabilities against integer labels smoothed to
    (1 - ε)·one-hot + ε/K (Szegedy et al., "Rethinking the Inception
    Architecture", 2016): (1 - ε)·(-log p_y) + ε·mean_k(-log p_k).

    Keras' SparseCategoricalCrossentropy has no smoothing, and the one-hot
    CategoricalCrossentropy would change the labels every metric reads."""

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, "float32")
        log_p = keras.ops.log(keras.ops.clip(y_pred, keras.config.epsilon(), 1.0))
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        nll = -keras.ops.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
        if not self.label_smoothing:
            return nll
        uniform = -keras.ops.mean(log_p, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class WeightAverage:
    """An exponential moving average of every floating-point weight of a
    model, batch-norm statistics included (as timm's ModelEmaV2 does):
    avg ← d·avg + (1 - d)·w after each step, with d ramped as
    min(decay, (1 + t)/(10 + t)) so that the first steps do not drag the
    average towards the initialisation. Its variables are checkpointed with
    the run, so a resumed run continues the same average."""

    def __init__(self, model, decay):
        self.decay = float(decay)
        self._weights = [w for w in model.weights if "float" in str(w.dtype)]
        self.averages = [tf.Variable(w.value, trainable=False, name="average")
                         for w in self._weights]
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")

    def trackable(self):
        """What a tf.train.Checkpoint saves of it (the averages, not the model again)."""
        return tf.train.Checkpoint(averages=self.averages, updates=self.updates)

    @tf.function
    def update(self):
        t = tf.cast(self.updates, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for average, weight in zip(self.averages, self._weights):
            average.assign(decay * average + (1.0 - decay) * tf.cast(weight.value, average.dtype))
        self.updates.assign_add(1)

    def swap(self):
        """Exchanges the model's weights and the averages (call again to undo)."""
        for average, weight in zip(self.averages, self._weights):
            current = tf.identity(weight.value)
            weight.assign(average)
            average.assign(current)


class AverageWeights(keras.callbacks.Callback):
    """Updates a WeightAverage after every step and, given `eval_ds`,
    validates the averaged weights at the end of each validated epoch as
    val_ema_accuracy."""

    def __init__(self, average, eval_ds):
        super().__init__()
        self.average, self.eval_ds = average, eval_ds

    def on_train_batch_end(self, batch, logs=None):
        self.average.update()

    def on_epoch_end(self, epoch, logs=None):
        # stop_training here means the epoch was cut short (time or divergence).
        if (self.eval_ds is None or logs is None or "val_accuracy" not in logs
                or self.model.stop_training):
            return
        self.average.swap()
        try:
            scores = self.model.evaluate(self.eval_ds, verbose=0, return_dict=True)
        finally:
            self.average.swap()
        logs["val_ema_accuracy"] = float(scores["accuracy"])
        logs["val_ema_loss"] = float(scores["loss"])


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------
def make_strategy(name):
    """default | mirrored | multi_worker (reads TF_CONFIG) | tpu."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError, RuntimeError) as error:
            raise RuntimeError(f"--strategy=tpu: no TPU found ({error}).") from error
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose default, mirrored, multi_worker or tpu.")


def is_chief(strategy):
    """True on the worker that writes files (always, without multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


# --------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------
class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class _Progress:
    """Checkpointed progress counters (restored with the model)."""

    def __init__(self):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
        self.best = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_val_accuracy")
        # Training time already spent in the current epoch, so that an epoch
        # resumed in another session reports its whole time, not only the rest.
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                   name="seconds_in_epoch")

    def start_epoch_clock(self):
        """Starts timing this session's part of the current epoch."""
        self._clock_start = time.perf_counter()
        self._seconds_before = float(self.seconds.numpy())

    def epoch_seconds(self):
        """Time spent in the current epoch, earlier sessions included."""
        return self._seconds_before + time.perf_counter() - self._clock_start


class StepCheckpoint(keras.callbacks.Callback):
    """Saves model, optimizer and progress every `every` steps and every
    `every_seconds` of wall time, stops with a clear error when the loss stops
    being finite, and stops (after a save) once `stop_at` (time.time()) has
    passed. `save(step)` writes one checkpoint."""

    def __init__(self, save, progress, epoch, first_batch, every, every_seconds=None,
                 stop_at=None, last_batch=None):
        super().__init__()
        self.save, self.progress = save, progress
        self.epoch, self.batch, self.every = epoch, first_batch, every
        # The epoch's last batch ends with its own save and validation: a stop
        # there is left to the caller, after them.
        self.last_batch = last_batch
        self.every_seconds, self.stop_at = every_seconds, stop_at
        self.diverged_at = None
        self.stopped_for_time = False
        self.last_save = time.time()

    def deadline(self):
        return self.stop_at() if callable(self.stop_at) else self.stop_at

    def on_epoch_begin(self, epoch, logs=None):
        # The one epoch clock, which EpochLog reads too.
        self.progress.start_epoch_clock()

    def on_train_batch_end(self, batch, logs=None):
        self.batch += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.diverged_at = (self.epoch, self.batch, float(loss))
            self.model.stop_training = True
            return
        step = int(self.model.optimizer.iterations.numpy())
        now = time.time()
        deadline = self.deadline()
        out_of_time = (deadline is not None and now >= deadline
                       and (self.last_batch is None or self.batch < self.last_batch))
        if ((self.every and step % self.every == 0) or out_of_time
                or (self.every_seconds and now - self.last_save >= self.every_seconds)):
            self.progress.epoch.assign(self.epoch)
            self.progress.batch.assign(self.batch)
            self.progress.seconds.assign(self.progress.epoch_seconds())
            self.save(step)
            self.last_save = now
        if out_of_time:
            self.stopped_for_time = True
            self.model.stop_training = True


class OneEpoch(keras.callbacks.Callback):
    """Ends `fit` after the current epoch.

    Each epoch gets its own dataset (a function of the epoch, so that a run can
    resume mid-epoch); `fit` is told the total number of epochs only so that
    its progress bar counts them.
    """

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


class EpochLog(keras.callbacks.Callback):
    """Per-epoch metrics (CSV and JSON), best weights, learning rate, speed."""

    def __init__(self, rows, path_csv, path_json, best_path, progress, images_per_step, chief):
        super().__init__()
        self.rows, self.path_csv, self.path_json = rows, path_csv, path_json
        self.best_path, self.progress = best_path, progress
        self.images_per_step, self.chief = images_per_step, chief

    def on_epoch_begin(self, epoch, logs=None):
        # A resumed epoch counts the batches and time before its checkpoint.
        self.start_step = (int(self.model.optimizer.iterations.numpy())
                           - int(self.progress.batch.numpy()))
        self.start_lr = float(current_learning_rate(self.model.optimizer))

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:
            # Cut short (out of time or diverged): not a whole epoch, and the
            # checkpoint resumes it where it stopped.
            return
        seconds = self.progress.epoch_seconds()
        steps = int(self.model.optimizer.iterations.numpy()) - self.start_step
        row = {"epoch": epoch + 1, "step": int(self.model.optimizer.iterations.numpy()),
               "learning_rate_at_start": self.start_lr,
               "seconds": round(seconds, 2),
               "train_images_per_second": round(steps * self.images_per_step / max(seconds, 1e-9), 1)}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.rows.append(row)
        val = row.get("val_accuracy")
        if val is not None and val > float(self.progress.best.numpy()):
            self.progress.best.assign(val)
            if self.chief:
                atomic_save_weights(self.model, self.best_path)
        if self.chief:
            write_metrics(self.rows, self.path_csv, self.path_json)


def current_learning_rate(optimizer):
    lr = optimizer.learning_rate
    return lr.numpy() if hasattr(lr, "numpy") else lr


def write_metrics(rows, path_csv, path_json):
    keys = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    atomic_write(path_json, json.dumps(rows, indent=2))
    with atomic_open(path_csv) as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
class atomic_open:
    """Write to a temporary file in the same directory, then rename."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        self.file = os.fdopen(fd, "w", newline="")
        return self.file

    def __exit__(self, kind, value, traceback):
        self.file.close()
        if kind is None:
            # mkstemp creates 0600 files; give the result the usual permissions.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def atomic_write(path, text):
    with atomic_open(path) as f:
        f.write(text)


def atomic_save_weights(model, path):
    """The model's weights only: Keras would also store the optimizer's slots
    of a compiled model, doubling the file, so save an uncompiled view of the
    same layers (same structure, loads into the built model)."""
    tmp = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    keras.Model(model.inputs, model.outputs, name=model.name).save_weights(tmp)
    os.replace(tmp, path)


def recalibrate_batch_norm(model, images, batch_size=128):
    """Re-estimates the moving mean and variance of every batch normalisation
    in `model` from `images` ("precise BN": Wu & Johnson, "Rethinking 'Batch'
    in BatchNorm", 2021), leaving every weight as it is.

    The moving statistics are exponential averages with momentum 0.99, so a
    run of a few hundred steps still carries a share 0.99**steps of their
    initial values (0 and 1), and the model evaluates with statistics that
    none of its batches had: after 80 steps on 500 CIFAR-10 images a ResNet-32
    scored 15% with them and 34% after re-estimation. Here each batch-norm
    layer's moving statistics become the equal-weight average of its batch
    statistics over the full batches of `images` (one forward pass in
    training mode per batch, batch k weighted by momentum 1 - 1/k), which is
    what an infinitely long run at the final weights would converge to up to
    the between-batch spread of the means.

    Covers Keras BatchNormalization layers and the batch norms inside the zoo
    blocks (standalone and stacked). A frozen Keras BatchNormalization
    (trainable=False) runs in inference mode and keeps its statistics.

    Args:
      model: a Keras model.
      images: array of images as the model takes them (N, H, W, C).
      batch_size: images per forward pass; the trailing partial batch is
        dropped unless it is the only one.
    Returns:
      the number of batches used.
    """
    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, H, W, C) array, got shape "
                         f"{images.shape}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    batches = max(1, len(images) // batch_size)
    keras_norms = [layer for layer in model._flatten_layers()
                   if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in keras_norms]
    try:
        for k in range(1, batches + 1):
            momentum = 1.0 - 1.0 / k
            for layer in keras_norms:
                layer.momentum = momentum
            with ops.override_moving_statistics_momentum(momentum):
                model(images[(k - 1) * batch_size:k * batch_size], training=True)
    finally:
        for layer, momentum in zip(keras_norms, saved):
            layer.momentum = momentum
    return batches


def git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else None
        return f"{commit}-dirty" if commit and dirty.stdout.strip() else commit
    except (OSError, subprocess.SubprocessError):
        return None


# CPU features that execute bfloat16 arithmetic natively (x86: AVX512-BF16,
# AMX; aarch64: the BF16 extension). Without one, oneDNN emulates it.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_info(path="/proc/cpuinfo"):
    """The CPU's model name and feature flags, from /proc/cpuinfo (empty
    where there is none)."""
    model, flags = None, set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "cpu_flags": sorted(flags)}


def native_bfloat16(info=None):
    """Whether this CPU computes in bfloat16 natively, or None if unknown."""
    info = cpu_info() if info is None else info
    if not info["cpu_flags"]:
        return None
    return any(flag in info["cpu_flags"] for flag in NATIVE_BFLOAT16_FLAGS)


def hardware():
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    info = cpu_info()
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "cpu_model": info["cpu_model"],
            "cpu_native_bfloat16": native_bfloat16(info), "devices": devices,
            "onednn_opts": os.environ.get(ONEDNN_ENV),
            "tensorflow": tf.__version__, "keras": keras.__version__}


def warn_if_bfloat16_is_emulated(mixed_precision):
    """Warns when mixed_bfloat16 would run on a CPU without native bfloat16:
    there it is several times slower than float32, not faster (Hamiltonian-74,
    batch 100, on a 2-core AVX2-only AMD EPYC VM: 5 img/s against 43 img/s)."""
    if not mixed_precision or tf.config.list_physical_devices("GPU"):
        return False
    if native_bfloat16() is not False:
        return False
    warnings.warn(
        "mixed_bfloat16 on a CPU without native bfloat16 (none of "
        f"{', '.join(NATIVE_BFLOAT16_FLAGS)}): it is emulated and several times slower "
        "than float32 here. Pass --nomixed_precision (mixed_precision=False) to train in float32.",
        RuntimeWarning, stacklevel=3)
    return True


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


# --------------------------------------------------------------------------
# The training job
# --------------------------------------------------------------------------
def _prebuild_for_multi_worker(model, strategy, train_split):
    """Works around two failures of Keras 3 `fit` under MultiWorkerMirroredStrategy
    (keras-team/keras#20585; seen with Keras 3.15, TF 2.21):

    * `fit` first all-reduces a distributed input batch to build the compiled
      loss and metrics symbolically, and that reduce fails ("Attempt to
      convert a value (PerReplica ...)"). We build them from a local batch
      instead, which is all the reduce was for, and skip Keras' build.
    * `fit` reduces the logged metrics of every step with a "mean" along
      axis 0, which fails for scalars. The step functions here return them
      as 1-vectors, which that reduce turns into the mean over workers.
    The gradients are all-reduced by the strategy as usual.
    """
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def as_vectors(data, step=step):
            return {k: tf.reshape(v, [1]) for k, v in step(data).items()}

        setattr(model, name, as_vectors)
    images, labels = next(iter(zdata.eval_dataset(train_split.subset(np.arange(2)), 2)))
    with strategy.scope():
        model._symbolic_build(data_batch=(images, labels))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


# Fields a resumed run may change: where and how verbosely it runs, and how
# it computes (precision, engine, strategy), which a run may switch between
# segments on different machines; the weights and their updates stay the same.
SEGMENT_FIELDS = frozenset({"verbose", "output_dir", "data_dir", "mixed_precision", "reversible",
                            "strategy", "checkpoint_every"})
# Fields added since runs were first recorded, with the value an older run had.
_FIELDS_ADDED = {"label_smoothing": 0.0, "ema_decay": None, "warm_start": None, "holdout": None,
                 "skip_unreadable": False}


class ConfigurationError(ValueError):
    """A run cannot start as configured (e.g. its output directory holds
    another run): a user error."""


def _check_resumable(config, output_dir):
    path = os.path.join(output_dir, "config.json")
    saved_fields = dataclasses.asdict(config)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        saved = {**_FIELDS_ADDED, **saved}
        diff = {k: (saved.get(k), v) for k, v in saved_fields.items()
                if k not in SEGMENT_FIELDS and saved.get(k) != v}
        if diff:
            raise ConfigurationError(
                f"{output_dir} holds a run with a different configuration "
                f"(saved vs now: {diff}). Use another --output_dir or remove it.")
    return saved_fields


SNAPSHOT_FILES = ("config.json", "metrics.csv", "metrics.json")


def _has_checkpoint_entry(path, name):
    return any(key.split("/")[0] == name for key, _ in tf.train.list_variables(path))


def snapshot_run(run_dir, destination):
    """Copies what resuming `run_dir` needs into `destination`: its
    configuration, per-epoch metrics and latest resumable checkpoint (weights,
    optimizer state and position in the data order), but no weights files or
    logs. `train.py --output_dir <a copy of destination>` with the run's flags
    continues it, on another machine or in a later session, to the same
    weights as an uninterrupted run.
    """
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no resumable checkpoint.")
    os.makedirs(os.path.join(destination, "checkpoints"), exist_ok=True)
    for name in SNAPSHOT_FILES:
        if os.path.exists(os.path.join(run_dir, name)):
            shutil.copy2(os.path.join(run_dir, name), os.path.join(destination, name))
    prefix = os.path.basename(latest)
    for name in os.listdir(os.path.dirname(latest)):
        if name.startswith(prefix + "."):
            shutil.copy2(os.path.join(os.path.dirname(latest), name),
                         os.path.join(destination, "checkpoints", name))
    # An index naming only the copied checkpoint, so that the manager finds
    # no missing older ones.
    atomic_write(os.path.join(destination, "checkpoints", "checkpoint"),
                 f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n')
    return os.path.join(destination, "checkpoints", prefix)


def train(config, callbacks=(), stop_at=None, checkpoint_seconds=None, on_checkpoint=None):
    """Runs (or resumes) a training job. Returns the dict written to results.json.

    `callbacks` are extra Keras callbacks. The global Keras dtype policy is
    set for the run and restored afterwards; `deterministic=True` enables
    TensorFlow op determinism for the rest of the process.

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
    with precision.policy(dtype_policy(resolved.mixed_precision)):
        return _train(resolved, callbacks, stop_at, checkpoint_seconds, on_checkpoint)


def resolve_weights(warm_start):
    """The weights file of a warm start: a path, or a pretrained name."""
    if os.path.exists(warm_start):
        return warm_start
    from zoo import pretrained

    return pretrained.weights_path(warm_start)


def load_splits(config):
    """Training and validation splits as the configuration asks."""
    train_split = zdata.load(config.dataset, "train", config.data_dir,
                             skip_unreadable=config.skip_unreadable)
    try:
        test_split = zdata.load(config.dataset, "test", config.data_dir,
                                skip_unreadable=config.skip_unreadable)
    except (zdata.DataNotFoundError, KeyError):
        # No test split (e.g. a flat image folder): validate on a held-out part.
        train_split, test_split = zdata.holdout(train_split, HOLDOUT_FRACTION, config.seed)
        print(f"{config.dataset} has no test split: validating on a stratified "
              f"{HOLDOUT_FRACTION:.0%} of the training images ({len(test_split)}).")
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

    reversible = uses_reversible_engine(config)
    keras.utils.set_random_seed(config.seed)
    previous = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
    with strategy.scope():
        model = registry.build(
            config.model, classes=train_split.num_classes, input_shape=train_split.image_shape,
            reversible=reversible, weight_decay=config.weight_decay,
            smoothness_decay=config.smoothness_decay,
            synchronized_bn=strategy.num_replicas_in_sync > 1, **architecture_args(config))
        if config.warm_start and not previous:
            # Before compiling, so the file (weights only) meets no optimizer state.
            model.load_weights(resolve_weights(config.warm_start))
        recipe = RECIPES[config.recipe]
        optimizer = keras.optimizers.SGD(
            make_schedule(config, steps_per_epoch, total_steps),
            momentum=recipe.momentum, nesterov=recipe.nesterov)
        model.compile(
            optimizer=optimizer,
            loss=(SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
                  else keras.losses.SparseCategoricalCrossentropy()),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                     keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
        )
        optimizer.build(model.trainable_variables)
        progress = _Progress()
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
            if previous and not _has_checkpoint_entry(previous, name):
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
    epoch_log = EpochLog(rows, os.path.join(output_dir, "metrics.csv"), metrics_json,
                         best_path, progress, config.batch_size, chief)
    tensorboard = keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard"))
    eval_ds = zdata.eval_dataset(test_split, config.batch_size)
    # The average is validated each epoch only on held-out training images:
    # on the test split it would only tempt a choice there, and costs time.
    averaging = [] if average is None else [
        AverageWeights(average, eval_ds if config.holdout else None)]

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _prebuild_for_multi_worker(model, strategy, train_split)

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
        history = model.fit(
            zdata.train_dataset(train_split, config.batch_size, config.seed, epoch, first_batch),
            epochs=total_epochs, initial_epoch=epoch, steps_per_epoch=steps_now, shuffle=False,
            validation_data=eval_ds if validate else None,
            # The average is updated before the saver checkpoints the step.
            callbacks=[*averaging, saver, epoch_log, tensorboard, *callbacks, OneEpoch()],
            verbose=config.verbose)
        if saver.diverged_at:
            e, b, value = saver.diverged_at
            last = (f"The last good checkpoint is {manager.latest_checkpoint}."
                    if manager.latest_checkpoint else "No checkpoint had been written yet.")
            raise TrainingDiverged(
                f"The training loss became {value} at epoch {e + 1}, batch {b} "
                f"(step {int(optimizer.iterations.numpy())}); training stopped. {last} "
                f"Try a lower --learning_rate, float32 instead of mixed precision, "
                f"or check the data.")
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
