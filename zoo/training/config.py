"""What defines a training run: named recipes and `TrainConfig`, the fields a
resumed run may change, and the builder arguments a run records."""

import dataclasses
import json
from typing import Optional, Sequence

from zoo import registry
from zoo.provenance import auto_mixed_precision


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
    `schedule_epochs` sets the length of the learning-rate schedule when it
    differs from the run's: a run of 3 epochs with schedule_epochs=120 trains
    the first 3 epochs of a 120-epoch schedule (a pilot of a long run).
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
    schedule_epochs: Optional[int] = None
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
        if values["schedule_epochs"] is not None and values["schedule_epochs"] < 1:
            raise ValueError(f"schedule_epochs must be positive, got {values['schedule_epochs']}.")
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


# Fields a resumed run may change: where and how verbosely it runs, and how
# it computes (precision, engine, strategy), which a run may switch between
# segments on different machines; the weights and their updates stay the same.
SEGMENT_FIELDS = frozenset({"verbose", "output_dir", "data_dir", "mixed_precision", "reversible",
                            "strategy", "checkpoint_every"})


# Fields added since runs were first recorded, with the value an older run had.
FIELDS_ADDED = {"label_smoothing": 0.0, "ema_decay": None, "warm_start": None, "holdout": None,
                 "skip_unreadable": False}
