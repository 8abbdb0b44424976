"""Turning model outputs into labelled predictions: `predict_images` for
files, folders and arrays, and the classifier of a zoo SavedModel export."""

import dataclasses
import os
from typing import List, Tuple

import numpy as np
import tensorflow as tf

from zoo.data.images import image_paths, load_images
from zoo.errors import NotAZooExportError

def top_k(probabilities, label_names=None, k=5):
    """Per row: a list of (class index, label, probability), best first."""
    probabilities = np.asarray(probabilities)
    k = min(k, probabilities.shape[-1])
    results = []
    for row in probabilities:
        best = np.argsort(-row, kind="stable")[:k]
        results.append([
            (int(i), label_names[i] if label_names is not None else str(int(i)), float(row[i]))
            for i in best
        ])
    return results


@dataclasses.dataclass
class Predictions:
    """What `predict_images` returns.

    labels: the best class's name per classified image.
    probabilities: float32 array (N, classes), the model's output.
    top: per image, [(class index, label, probability), ...], best first.
    sources: per image, its path, or its index among the arrays given.
    failures: [(path, reason), ...] for files that could not be read.
    """

    labels: List[str]
    probabilities: np.ndarray
    top: List[List[Tuple[int, str, float]]]
    sources: List[object]
    failures: List[Tuple[str, str]]


def as_image_batch(images, image_size):
    """Arrays of images as one uint8-range float batch (N, H, W, 3) at
    `image_size`: a single image (H, W, C) gets its batch axis, grayscale
    becomes RGB, alpha is dropped, other sizes are resized. Raises ValueError
    saying what shapes are accepted."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"Images must have shape (height, width, channels) or (batch, height, width, "
            f"channels) with 1, 3 or 4 channels; got shape {np.shape(images)}.")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if tuple(array.shape[1:3]) != tuple(image_size):
        resized = tf.image.resize(tf.cast(array, tf.float32), image_size, antialias=True)
        array = tf.clip_by_value(resized, 0, 255).numpy()
    return array


class SavedModelClassifier:
    """A SavedModel written by zoo.export, with the part of a Keras
    classifier's interface that `predict_images` uses (`input_shape`,
    `output_shape`, `predict`) and the class names of its labels.txt.

    It calls the `serving_float` signature, so images are resized to the
    signature's size before they reach it.
    """

    def __init__(self, path):
        path = os.fspath(path)
        if not tf.saved_model.contains_saved_model(path):
            raise FileNotFoundError(f"No SavedModel at {path!r} (a version directory, e.g. "
                                    "exports/hamiltonian-74-cifar10/1).")
        self._loaded = tf.saved_model.load(path)
        self._signature = self._loaded.signatures.get("serving_float")
        if self._signature is None:
            raise NotAZooExportError(f"{path} has no serving_float signature: it was not "
                                     "written by zoo export.")
        spec = self._signature.structured_input_signature[1]["images"]
        self.input_shape = tuple(spec.shape.as_list())
        self.output_shape = tuple(self._signature.structured_outputs["probabilities"]
                                  .shape.as_list())
        labels = os.path.join(path, "assets.extra", "labels.txt")
        self.label_names = (open(labels).read().splitlines() if os.path.exists(labels)
                            else None)

    def predict(self, images, batch_size=100, verbose=0):
        del verbose
        return np.concatenate([
            self._signature(images=tf.constant(images[i:i + batch_size], tf.float32))[
                "probabilities"].numpy()
            for i in range(0, len(images), batch_size)])


def predict_images(model, images, label_names=None, top=5, batch_size=100):
    """Classifies image files or arrays with `model` (a zoo classifier, which
    takes values in [0, 255]).

    `images` is a path (an image file or a folder, searched recursively), an
    array (one image (H, W, C) or a batch (N, H, W, C)), or a list of paths
    and arrays. Files are decoded as `load_images` does; arrays are converted
    as `as_image_batch` does. An unreadable file does not stop the others: it
    is listed in `failures` with the reason. `label_names` (e.g.
    `zoo.info(name)["labels"]`) names the classes; without it, the model's
    own `label_names` if it has them (a SavedModelClassifier), else their
    indices.

        model = zoo.load("hamiltonian-74-cifar10")
        result = zoo.predict_images(model, "cat.png",
                                    label_names=zoo.info("hamiltonian-74-cifar10")["labels"])
        result.labels[0], result.probabilities[0]
    """
    image_size = tuple(model.input_shape[1:3])
    items = images if isinstance(images, (list, tuple)) else [images]
    batches, sources, failures, files = [], [], [], []

    def flush_files():
        if files:
            decoded, kept, failed = load_images(files, image_size, skip_unreadable=True)
            batches.append(decoded.astype(np.float32))
            sources.extend(kept)
            failures.extend(failed)
            files.clear()

    for index, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            files.extend(image_paths([item]))
        else:
            flush_files()
            batch = as_image_batch(item, image_size)
            batches.append(batch.astype(np.float32))
            sources.extend([index] if np.ndim(item) == 3 else
                           [(index, i) for i in range(len(batch))])
    flush_files()
    classes = model.output_shape[-1]
    if label_names is None:
        label_names = getattr(model, "label_names", None)
    if label_names is not None and len(label_names) != classes:
        raise ValueError(f"{len(label_names)} label names for a model with {classes} classes.")
    if batches and sum(len(b) for b in batches):
        stacked = np.concatenate(batches)
        probabilities = np.asarray(model.predict(stacked, batch_size=batch_size, verbose=0),
                                   np.float32)
    else:
        probabilities = np.zeros((0, classes), np.float32)
    ranked = top_k(probabilities, label_names, top)
    return Predictions(labels=[row[0][1] for row in ranked], probabilities=probabilities,
                       top=ranked, sources=sources, failures=failures)
