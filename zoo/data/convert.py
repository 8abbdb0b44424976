"""Images converted to the shape a model takes: channels (alpha dropped, gray
to RGB and back) and size (bilinear, antialiased)."""

import dataclasses

import numpy as np
import tensorflow as tf

from zoo.errors import ConversionError

# Images resized per chunk, so that a large dataset never needs its float
# copy in memory all at once.
RESIZE_CHUNK = 512


def prepare_images(images, image_shape):
    """Converts uint8 images (N, H, W, C) to `image_shape` (H', W', C').

    Drops an alpha channel (C = 2 or 4), repeats a gray channel to RGB (or
    averages RGB to gray for a one-channel model, ITU-R 601 weights), then
    resizes bilinearly with antialiasing. Returns (images, list of the steps
    applied, in words). Raises ConversionError (a ValueError) for other channel counts.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ConversionError(f"Images must be (N, H, W, C), got shape {images.shape}.")
    height, width, channels = (int(d) for d in image_shape)
    steps = []
    have = images.shape[-1]
    if have in (2, 4) and channels in (1, 3):
        images = images[..., :-1]
        steps.append("alpha channel dropped")
        have -= 1
    if have == 1 and channels == 3:
        images = np.repeat(images, 3, axis=-1)
        steps.append("grayscale repeated to RGB")
    elif have == 3 and channels == 1:
        gray = tf.image.rgb_to_grayscale(tf.constant(images, tf.float32)).numpy()
        images = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        steps.append("RGB averaged to grayscale")
    elif have != channels:
        raise ConversionError(
            f"Images have {images.shape[-1]} channels; the model takes {channels} and only "
            "grayscale (1), grayscale+alpha (2), RGB (3) and RGBA (4) images are converted.")
    if images.shape[1:3] != (height, width):
        steps.append(f"resized from {images.shape[1]}x{images.shape[2]} to {height}x{width} "
                     "(bilinear, antialiased)")
        resized = [
            tf.image.resize(images[i:i + RESIZE_CHUNK], (height, width), antialias=True).numpy()
            for i in range(0, len(images), RESIZE_CHUNK)]
        images = np.clip(np.rint(np.concatenate(resized)), 0, 255).astype(np.uint8)
    return images.astype(np.uint8, copy=False), steps


def prepare_split(split, image_shape):
    """A `zoo.data.Split` with its images converted (`prepare_images`);
    returns (split, steps)."""
    images, steps = prepare_images(split.images, image_shape)
    return dataclasses.replace(split, images=images), steps
