"""Input pipelines.

The training pipeline (`train_dataset`) is a pure function of (seed, epoch):
the order of the examples and the random crop and flip of every example are
derived from them with stateless random ops, so an interrupted run can resume
mid-epoch and see exactly the batches it would have seen.
"""

import numpy as np
import tensorflow as tf


def crop_padding(image_size):
    """The paper's padding before random crops: 4 at 32×32, 12 at 96×96."""
    return max(1, int(round(image_size / 8)))


def augment(image, seed, padding):
    """Zero-pad, random crop back to size, random horizontal flip (stateless)."""
    shape = tf.shape(image)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    image = tf.image.stateless_random_crop(padded, shape, seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def epoch_order(num_examples, seed, epoch):
    """The permutation of the examples in a given epoch."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def steps_per_epoch(num_examples, batch_size):
    return max(1, num_examples // batch_size)


def train_dataset(data, batch_size, seed, epoch, skip_batches=0, augmentation=True):
    """The batches of one training epoch, from batch `skip_batches` on.

    Every example's augmentation is seeded by (seed, epoch * N + position), so
    the epoch is reproducible in whole or from any batch.
    """
    n = len(data)
    steps = steps_per_epoch(n, batch_size)
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training examples.")
    order = epoch_order(n, seed, epoch)[skip_batches * batch_size: steps * batch_size]
    positions = np.arange(skip_batches * batch_size, steps * batch_size, dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices(
        (data.images[order], data.labels[order], positions))
    padding = crop_padding(data.images.shape[1])

    def prepare(image, label, position):
        if augmentation:
            seed_pair = tf.stack([tf.constant(seed, tf.int64), epoch * n + position])
            image = augment(image, seed_pair, padding)
        return image, label

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(data, batch_size):
    """The split in order, unaugmented, the last batch possibly smaller."""
    ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
