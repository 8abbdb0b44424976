"""Image files: found in folders, decoded, converted to RGB and resized."""

import os
import re

import numpy as np
import tensorflow as tf

from zoo.errors import UnreadableImageError

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
