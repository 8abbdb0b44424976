"""Reading images and turning model outputs into labelled predictions."""

import dataclasses
import os
import re
from typing import List, Tuple

import numpy as np
import tensorflow as tf

# What tf.io.decode_image reads (it has no TIFF decoder).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def image_paths(paths):
    """Expands files and directories (searched recursively) into a list of
    image files, each directory's sorted; other files in them are counted in a
    warning."""
    found, skipped = [], []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            for folder, subfolders, files in os.walk(path):
                subfolders.sort()
                for f in sorted(files):
                    (found if f.lower().endswith(IMAGE_EXTENSIONS) else skipped).append(
                        os.path.join(folder, f))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"No image file or directory at {path!r}.")
    if skipped:
        tf.get_logger().warning(
            "Skipped %d files that are not images the decoder reads (%s), e.g. %s.",
            len(skipped), ", ".join(IMAGE_EXTENSIONS), skipped[0])
    if not found:
        raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {paths!r}.")
    return found


class UnreadableImageError(ValueError):
    """An image file could not be read or decoded; the message names it."""


def read_image(path, image_size=None, channels=3):
    """One image file as a uint8 array, resized to `image_size` (H, W) if
    given. With channels=3 grayscale becomes RGB and alpha is dropped;
    channels=0 keeps the file's. Raises UnreadableImageError naming the file
    and the reason."""
    try:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
            tf.errors.UnimplementedError) as error:
        # TensorFlow wraps the decoder's words in op and device names.
        reason = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", error.message or "").strip()
        raise UnreadableImageError(f"{path}: cannot decode the image ({reason})") from None
    if image_size is not None and tuple(image.shape[:2]) != tuple(image_size):
        image = tf.image.resize(image, image_size, antialias=True)
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return image.numpy()


def load_images(paths, image_size, skip_unreadable=False):
    """Decodes image files to a uint8 array (N, H, W, 3) of the model's size.

    Grayscale images become RGB; images of another size are resized with
    bilinear interpolation (antialiased when shrinking). An unreadable file
    raises UnreadableImageError naming it; with `skip_unreadable` the readable
    ones are returned as (images, their paths, [(path, reason), ...]).
    """
    images, kept, failures = [], [], []
    for path in paths:
        try:
            images.append(read_image(path, image_size))
            kept.append(path)
        except UnreadableImageError as error:
            if not skip_unreadable:
                raise
            failures.append((path, str(error)[len(f"{path}: "):]))
    stacked = (np.stack(images) if images
               else np.zeros((0, *image_size, 3), np.uint8))
    return (stacked, kept, failures) if skip_unreadable else stacked


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


class NotAZooExportError(ValueError):
    """A SavedModel without the signatures zoo.export writes."""


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
