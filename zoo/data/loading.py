"""Loading datasets.

`load(dataset, split)` returns a split as in-memory uint8 arrays. It looks,
in order, for:
  1. `dataset` as a path: a `.npz` file with keys x_train, y_train, x_test,
     y_test (as in `../shared/data/`), or an image folder with one
     sub-folder per class (and optionally `train/` and `test/` above them);
  2. a local file for a dataset name, in `data_dir`, then in the directories
     of the `ZOO_DATA_DIR` environment variable (os.pathsep separated):
     `<name>.npz` (for cifar100 also `cifar100_partial.npz`) or `<name>/`;
  3. tensorflow-datasets: `tfds.load(name)`, which uses data a user has
     prepared (`TFDS_DATA_DIR`) or downloads it where there is internet.
When nothing works the error says what was looked for and how to provide it.
"""

import dataclasses
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from zoo.data.datasets import DATASETS, find
from zoo.data.images import IMAGE_EXTENSIONS, read_image
from zoo.errors import DataNotFoundError, UnreadableImageError


DATA_DIR_ENV = "ZOO_DATA_DIR"
# Validation share held out of the training split when a dataset has no test split.
HOLDOUT_FRACTION = 0.1


SPLIT_ALIASES = {"validation": "test", "val": "test", "eval": "test"}


@dataclasses.dataclass
class Split:
    """One split of a dataset held in memory."""

    images: np.ndarray  # uint8, (N, H, W, C)
    labels: np.ndarray  # int64, (N,)
    label_names: Sequence[str]
    name: str
    split: str
    source: str

    def __post_init__(self):
        if self.images.ndim == 3:  # grayscale without a channel axis
            self.images = self.images[..., None]
        if self.images.ndim != 4:
            raise ValueError(f"{self.source}: images must be (N, H, W, C), got {self.images.shape}.")
        self.labels = np.asarray(self.labels).reshape(-1).astype(np.int64)
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"{self.source}: {len(self.images)} images but {len(self.labels)} labels.")
        if self.images.dtype != np.uint8:
            self.images = np.clip(np.rint(self.images), 0, 255).astype(np.uint8)

    def __len__(self):
        return len(self.labels)

    @property
    def num_classes(self):
        return len(self.label_names)

    @property
    def image_shape(self):
        return tuple(self.images.shape[1:])

    def subset(self, indices):
        return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices])


def data_dirs(data_dir=None):
    """The local directories searched for named datasets, in order."""
    dirs = []
    if data_dir:
        dirs.append(os.fspath(data_dir))
    dirs.extend(d for d in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep) if d)
    return dirs


def load(dataset, split="train", data_dir=None, skip_unreadable=False):
    """Loads one split ("train" or "test") of a dataset into memory.

    An image folder's unreadable file raises UnreadableImageError naming it;
    with `skip_unreadable` such files are left out and counted in a warning.
    """
    split = SPLIT_ALIASES.get(split, split)
    path = os.fspath(dataset)
    if path.endswith(".npz") or os.path.sep in path or os.path.exists(path):
        if not os.path.exists(path):
            raise DataNotFoundError(f"No dataset file or folder at {path!r}.")
        return _load_path(path, split, name=os.path.splitext(os.path.basename(path))[0],
                          skip_unreadable=skip_unreadable)

    name = path.lower()
    known = find(name)
    tried = []
    for directory in data_dirs(data_dir):
        for filename in (known.local_files if known else (f"{name}.npz",)):
            candidate = os.path.join(directory, filename)
            tried.append(candidate)
            if os.path.isfile(candidate):
                if filename.endswith("_partial.npz"):
                    tf.get_logger().warning(
                        "Using %s: only part of %s is in it.", candidate, name)
                return _load_path(candidate, split, name=name)
        folder = os.path.join(directory, name)
        tried.append(folder + os.sep)
        if os.path.isdir(folder):
            return _load_path(folder, split, name=name, skip_unreadable=skip_unreadable)
    try:
        return _load_tfds(name, split, data_dir)
    except Exception as error:  # tfds raises many kinds; all mean "not available"
        looked = "\n  ".join(tried) if tried else f"(no data_dir given and ${DATA_DIR_ENV} unset)"
        raise DataNotFoundError(
            f"Could not find dataset {name!r} (split {split!r}).\n"
            f"Looked for local files:\n  {looked}\n"
            f"and tried tensorflow_datasets.load({name!r}, split={split!r}): "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}\n"
            f"Provide the data with --data_dir (or ${DATA_DIR_ENV}) pointing at a directory "
            f"holding {name}.npz (keys x_train, y_train, x_test, y_test) or an image folder "
            f"{name}/<class>/*.png, or prepare it with tensorflow-datasets."
        ) from error


def _load_path(path, split, name, skip_unreadable=False):
    if os.path.isdir(path):
        return _load_folder(path, split, name, skip_unreadable)
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        x_key, y_key = f"x_{split}", f"y_{split}"
        if x_key not in keys or y_key not in keys:
            raise KeyError(
                f"{path} has no {x_key!r}/{y_key!r} arrays (it has {sorted(keys)}).")
        images, labels = archive[x_key], archive[y_key]
        names = None
        for key in ("label_names", "fine_label_names", "class_names"):
            if key in keys:
                names = [str(s) for s in archive[key]]
                break
    if names is None:
        known = DATASETS.get(name)
        names = list(known.labels if known else [str(i) for i in range(int(labels.max()) + 1)])
    return Split(images, labels, names, name, split, path)


def _load_folder(path, split, name, skip_unreadable=False):
    if os.path.isdir(os.path.join(path, split)):
        root = os.path.join(path, split)
    elif split == "train" and not os.path.isdir(os.path.join(path, "test")):
        root = path  # a flat folder of class sub-folders is the training split
    else:
        raise DataNotFoundError(
            f"{path} has no {split!r} sub-folder (expected {path}/{split}/<class>/*.png).")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataNotFoundError(f"{root} has no class sub-folders (expected {root}/<class>/*.png).")
    images, labels, unreadable, other = [], [], [], []
    for index, cls in enumerate(classes):
        for file in _files_below(os.path.join(root, cls)):
            if not file.lower().endswith(IMAGE_EXTENSIONS):
                other.append(file)
                continue
            try:
                images.append(read_image(file, channels=0))
            except UnreadableImageError as error:
                if not skip_unreadable:
                    raise UnreadableImageError(
                        f"{error} (remove it, or skip unreadable images: --skip_unreadable, "
                        "skip_unreadable=True)") from None
                unreadable.append(file)
                continue
            labels.append(index)
    if unreadable:
        tf.get_logger().warning("Skipped %d unreadable images under %s, e.g. %s.",
                                len(unreadable), root, unreadable[0])
    if other:
        tf.get_logger().warning(
            "Skipped %d files under %s that are not images the decoder reads (%s), e.g. %s.",
            len(other), root, ", ".join(IMAGE_EXTENSIONS), other[0])
    if not images:
        raise DataNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under {root}.")
    return Split(_common_shape(images, root), np.array(labels), classes, name, split, root)


def _files_below(folder):
    """Every file under `folder`, sub-folders included, in a fixed order."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories.sort()
        found.extend(os.path.join(directory, f) for f in sorted(files))
    return found


def _common_shape(images, root):
    """The images as one uint8 array: alpha dropped, grayscale repeated to RGB
    where any image has colour, and every image resized (bilinear,
    antialiased) to the most common height and width."""
    colour = any(im.shape[-1] >= 3 for im in images)
    sizes = [im.shape[:2] for im in images]
    size = max(set(sizes), key=lambda hw: (sizes.count(hw), hw))
    converted, resized = [], 0
    for image in images:
        if image.shape[-1] in (2, 4):
            image = image[..., :-1]
        if colour and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        if image.shape[:2] != size:
            image = tf.image.resize(image, size, antialias=True)
            image = np.clip(np.rint(image.numpy()), 0, 255).astype(np.uint8)
            resized += 1
        converted.append(image)
    if resized:
        tf.get_logger().warning("Resized %d of %d images under %s to the most common size "
                                "%dx%d.", resized, len(images), root, size[0], size[1])
    return np.stack(converted)


def _load_tfds(name, split, data_dir):
    import tensorflow_datasets as tfds

    # data_dir: where the user prepared tensorflow-datasets data (None: its default).
    dataset, info = tfds.load(name, split=split, as_supervised=True, with_info=True,
                              batch_size=-1, data_dir=data_dir)
    images, labels = tfds.as_numpy(dataset)
    names = list(info.features["label"].names)
    return Split(images, labels, names, name, split, f"tfds:{name}")


def stratified_indices(labels, fraction, seed=0):
    """Sorted indices of a seeded, class-balanced `fraction` of the examples
    (at least one per class)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = max(1, int(round(fraction * len(members))))
        chosen.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(chosen))


def stratified_subset(data, fraction, seed=0):
    """A seeded, class-balanced fraction of a split (at least one per class).

    For the small-training-set experiment (Fig. 3 of Chang et al. 2018).
    """
    if fraction == 1:
        return data
    return data.subset(stratified_indices(data.labels, fraction, seed))


def holdout(data, fraction, seed=0):
    """Splits off a stratified `fraction` of `data` as a validation split, for
    datasets without a test split. Returns (rest, held out)."""
    held = stratified_indices(data.labels, fraction, seed)
    rest = np.setdiff1d(np.arange(len(data)), held)
    return data.subset(rest), dataclasses.replace(data.subset(held), split="holdout")


def load_train_and_test(dataset, data_dir=None, seed=0, skip_unreadable=False):
    """(train split, test split) of a dataset; where it has no test split (a
    flat image folder), a stratified HOLDOUT_FRACTION of the training images
    held out with `seed` stands in for it."""
    train = load(dataset, "train", data_dir, skip_unreadable=skip_unreadable)
    try:
        test = load(dataset, "test", data_dir, skip_unreadable=skip_unreadable)
    except (DataNotFoundError, KeyError):
        train, test = holdout(train, HOLDOUT_FRACTION, seed)
        print(f"{dataset} has no test split: validating on a stratified "
              f"{HOLDOUT_FRACTION:.0%} of the training images ({len(test)}).")
    return train, test
