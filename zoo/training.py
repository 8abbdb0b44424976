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
from zoo import registry
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
    mixed_precision: bool = False
    reversible: bool = True


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
    # 4.3 minutes each.
    "cpu": Recipe("cpu", batch_size=128, learning_rate=0.1, schedule="cosine",
                  weight_decay=5e-4, smoothness_decay=2e-4, epochs=30, warmup_epochs=1.0,
                  nesterov=True, mixed_precision=True, reversible=False),
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run.

    Fields left as None take the recipe's value. `fraction` trains on a
    stratified fraction of the training split. `checkpoint_every` is in steps.
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
    control_points: Optional[int] = None
    model_args: Optional[dict] = None
    seed: int = 0
    fraction: float = 1.0
    limit_train: Optional[int] = None
    limit_eval: Optional[int] = None
    validation_freq: int = 1
    checkpoint_every: int = 500
    strategy: str = "default"
    deterministic: bool = False
    verbose: int = 1

    def resolved(self):
        """A copy with the recipe's values filled in and the run length fixed."""
        if self.recipe not in RECIPES:
            raise ValueError(f"Unknown recipe {self.recipe!r}; choose from {sorted(RECIPES)}.")
        recipe = RECIPES[self.recipe]
        values = dataclasses.asdict(self)
        for field in ("batch_size", "learning_rate", "weight_decay", "smoothness_decay",
                      "mixed_precision", "reversible"):
            if values[field] is None:
                values[field] = getattr(recipe, field)
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
        _check_model_args(self.model_args)
        return TrainConfig(**values)


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
    """Saves model, optimizer and progress every `every` steps, and stops with
    a clear error when the loss stops being finite."""

    def __init__(self, manager, progress, epoch, first_batch, every):
        super().__init__()
        self.manager, self.progress = manager, progress
        self.epoch, self.batch, self.every = epoch, first_batch, every
        self.diverged_at = None

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
        if self.every and step % self.every == 0:
            self.progress.epoch.assign(self.epoch)
            self.progress.batch.assign(self.batch)
            self.progress.seconds.assign(self.progress.epoch_seconds())
            self.manager.save(checkpoint_number=step)


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
def _prebuild_for_multi_worker(model, strategy, train_split, config):
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


def _check_resumable(config, output_dir):
    path = os.path.join(output_dir, "config.json")
    saved_fields = dataclasses.asdict(config)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        ignore = {"verbose", "output_dir", "data_dir"}
        diff = {k: (saved.get(k), v) for k, v in saved_fields.items()
                if k not in ignore and saved.get(k) != v}
        if diff:
            raise ValueError(
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


def train(config, callbacks=()):
    """Runs (or resumes) a training job. Returns the dict written to results.json.

    `callbacks` are extra Keras callbacks. The global Keras dtype policy is
    set for the run and restored afterwards; `deterministic=True` enables
    TensorFlow op determinism for the rest of the process.
    """
    previous_policy = keras.config.dtype_policy()
    resolved = config.resolved()
    warn_if_bfloat16_is_emulated(resolved.mixed_precision)
    try:
        keras.config.set_dtype_policy(dtype_policy(resolved.mixed_precision))
        return _train(resolved, callbacks)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def load_splits(config):
    """Training and validation splits as the configuration asks."""
    train_split = zdata.load(config.dataset, "train", config.data_dir)
    try:
        test_split = zdata.load(config.dataset, "test", config.data_dir)
    except (zdata.DataNotFoundError, KeyError):
        # No test split (e.g. a flat image folder): validate on a held-out part.
        train_split, test_split = zdata.holdout(train_split, HOLDOUT_FRACTION, config.seed)
        print(f"{config.dataset} has no test split: validating on a stratified "
              f"{HOLDOUT_FRACTION:.0%} of the training images ({len(test_split)}).")
    if config.limit_train:
        train_split = train_split.subset(np.arange(min(config.limit_train, len(train_split))))
    if config.limit_eval:
        test_split = test_split.subset(np.arange(min(config.limit_eval, len(test_split))))
    return zdata.stratified_subset(train_split, config.fraction, config.seed), test_split


def _train(config, callbacks):
    # The code that trains is the code at the start (the checkout may change during a long run).
    code_commit = git_commit()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    output_dir = config.output_dir if chief else tempfile.mkdtemp(prefix="zoo-worker-")
    os.makedirs(output_dir, exist_ok=True)
    config_fields = _check_resumable(config, output_dir)
    if chief:
        atomic_write(os.path.join(output_dir, "config.json"), json.dumps(config_fields, indent=2))

    train_split, test_split = load_splits(config)
    steps_per_epoch = zdata.steps_per_epoch(len(train_split), config.batch_size)
    total_steps = config.steps or config.epochs * steps_per_epoch
    total_epochs = math.ceil(total_steps / steps_per_epoch)

    reversible = uses_reversible_engine(config)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = registry.build(
            config.model, classes=train_split.num_classes, input_shape=train_split.image_shape,
            reversible=reversible, weight_decay=config.weight_decay,
            smoothness_decay=config.smoothness_decay,
            synchronized_bn=strategy.num_replicas_in_sync > 1, **architecture_args(config))
        recipe = RECIPES[config.recipe]
        optimizer = keras.optimizers.SGD(
            make_schedule(config, steps_per_epoch, total_steps),
            momentum=recipe.momentum, nesterov=recipe.nesterov)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                     keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")],
        )
        optimizer.build(model.trainable_variables)
        progress = _Progress()
        tracked = dict(model=model, optimizer=optimizer, epoch=progress.epoch,
                       batch=progress.batch, best=progress.best, seconds=progress.seconds)
        previous = tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
        if previous and not _has_checkpoint_entry(previous, "seconds"):
            # Written before the epoch time was checkpointed: resume without it.
            del tracked["seconds"]
        checkpoint = tf.train.Checkpoint(**tracked)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(output_dir, "checkpoints"),
                                         max_to_keep=2)
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

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        _prebuild_for_multi_worker(model, strategy, train_split, config)

    start = time.perf_counter()
    step = int(optimizer.iterations.numpy())
    # The validation that ends the last epoch is the final evaluation (same
    # weights, data and metrics): kept so the test set is not run twice.
    last_validation = None
    while step < total_steps:
        epoch, first_batch = int(progress.epoch.numpy()), int(progress.batch.numpy())
        steps_now = min(steps_per_epoch - first_batch, total_steps - step)
        saver = StepCheckpoint(manager, progress, epoch, first_batch, config.checkpoint_every)
        validate = (epoch + 1) % config.validation_freq == 0 or step + steps_now >= total_steps
        history = model.fit(
            zdata.train_dataset(train_split, config.batch_size, config.seed, epoch, first_batch),
            epochs=total_epochs, initial_epoch=epoch, steps_per_epoch=steps_now, shuffle=False,
            validation_data=eval_ds if validate else None,
            callbacks=[saver, epoch_log, tensorboard, *callbacks, OneEpoch()],
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
        last_validation = ({k[len("val_"):]: v[-1] for k, v in history.history.items()
                            if k.startswith("val_")} if validate else None) or None
        progress.epoch.assign(epoch + 1)
        progress.batch.assign(0)
        progress.seconds.assign(0.0)
        manager.save(checkpoint_number=step)
    wall = time.perf_counter() - start

    final = last_validation or model.evaluate(eval_ds, verbose=0, return_dict=True)
    results = {
        "model": config.model, "dataset": config.dataset, "train_examples": len(train_split),
        "test_examples": len(test_split), "steps": step, "epochs": total_epochs,
        "test": {k: float(v) for k, v in final.items()},
        "best_val_accuracy": float(progress.best.numpy()),
        "wall_seconds_this_session": round(wall, 1), "resumed_from": resumed_from,
        "config": config_fields, "reversible_engine": reversible,
        "parameters": model.count_params(),
        "code_commit": code_commit, "hardware": hardware(),
        "replicas": strategy.num_replicas_in_sync,
    }
    if chief:
        atomic_save_weights(model, os.path.join(output_dir, "last.weights.h5"))
        if rows:
            plot_curves(rows, os.path.join(output_dir, "curves.png"))
        atomic_write(os.path.join(output_dir, "results.json"), json.dumps(results, indent=2))
    return results
