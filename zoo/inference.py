"""Reading images and turning model outputs into labelled predictions."""

import os

import numpy as np
import tensorflow as tf

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def image_paths(paths):
    """Expands files and directories into a sorted list of image files."""
    found = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            found.extend(
                os.path.join(path, f) for f in sorted(os.listdir(path))
                if f.lower().endswith(IMAGE_EXTENSIONS)
            )
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f"No image file or directory at {path!r}.")
    if not found:
        raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {paths!r}.")
    return found


def load_images(paths, image_size):
    """Decodes image files to a uint8 array (N, H, W, 3) of the model's size.

    Grayscale images become RGB; images of another size are resized with
    bilinear interpolation (antialiased when shrinking).
    """
    images = []
    height, width = image_size
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        if tuple(image.shape[:2]) != (height, width):
            image = tf.image.resize(image, (height, width), antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        images.append(image.numpy())
    return np.stack(images)


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
