"""Datasets: the table of named datasets (`datasets`), loading a split into
memory (`loading`), the seeded training and evaluation pipelines
(`pipeline`), and image conversion to what a model takes (`convert`)."""

from zoo.data.convert import prepare_images, prepare_split
from zoo.data.datasets import DATASETS, Dataset
from zoo.data.loading import (
    DATA_DIR_ENV,
    HOLDOUT_FRACTION,
    SPLIT_ALIASES,
    Split,
    data_dirs,
    holdout,
    load,
    load_train_and_test,
    stratified_indices,
    stratified_subset,
)
from zoo.data.pipeline import (
    augment,
    crop_padding,
    epoch_order,
    eval_dataset,
    steps_per_epoch,
    train_dataset,
)
from zoo.errors import DataNotFoundError

__all__ = [
    "DATASETS", "DATA_DIR_ENV", "DataNotFoundError", "Dataset", "HOLDOUT_FRACTION",
    "SPLIT_ALIASES", "Split", "augment", "crop_padding", "data_dirs", "epoch_order",
    "eval_dataset", "holdout", "load", "load_train_and_test", "prepare_images", "prepare_split",
    "steps_per_epoch", "stratified_indices", "stratified_subset", "train_dataset",
]
