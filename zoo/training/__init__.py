"""Training: the configuration of a run and its recipes (`config`), learning
rate schedules (`schedules`), losses (`losses`), weight averaging
(`averaging`), callbacks (`callbacks`), distribution strategies
(`distribute`), resumable snapshots (`checkpoints`), the loop (`loop`: `train`
and `fit_epoch`, which fine-tuning uses too), batch-norm recalibration
(`recalibration`) and fine-tuning (`finetune`).

    from zoo import training
    training.train(training.TrainConfig(model="hamiltonian-74-cifar10", output_dir="runs/h74"))
"""

from zoo.errors import ConfigurationError, TrainingDiverged
from zoo.training.averaging import AverageWeights, WeightAverage
from zoo.training.callbacks import (
    DivergenceGuard,
    EpochLog,
    OneEpoch,
    StepCheckpoint,
    current_learning_rate,
)
from zoo.training.checkpoints import SNAPSHOT_FILES, snapshot_run
from zoo.training.config import (
    RECIPES,
    RESERVED_MODEL_ARGS,
    SEGMENT_FIELDS,
    Recipe,
    TrainConfig,
    architecture_args,
    dtype_policy,
    uses_reversible_engine,
)
from zoo.training.distribute import is_chief, make_strategy
from zoo.training.losses import SmoothedSparseCrossentropy
from zoo.training.loop import fit_epoch, load_splits, resolve_weights, train
from zoo.training.recalibration import recalibrate_batch_norm
from zoo.training.schedules import StepDecay, WarmupCosine, make_schedule

__all__ = [
    "AverageWeights", "ConfigurationError", "DivergenceGuard", "EpochLog", "OneEpoch",
    "RECIPES", "RESERVED_MODEL_ARGS", "Recipe", "SEGMENT_FIELDS", "SNAPSHOT_FILES",
    "SmoothedSparseCrossentropy", "StepCheckpoint", "StepDecay", "TrainConfig",
    "TrainingDiverged", "WarmupCosine", "WeightAverage", "architecture_args",
    "current_learning_rate", "dtype_policy", "fit_epoch", "is_chief", "load_splits",
    "make_schedule", "make_strategy", "recalibrate_batch_norm", "resolve_weights",
    "snapshot_run", "train", "uses_reversible_engine",
]
