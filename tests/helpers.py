"""Shared test utilities."""

import numpy as np
import tensorflow as tf


def max_relative_error(a, b):
    """max |a − b| / max |a|, the error measure of the gradient tests."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a)), 1e-30)
    return float(np.max(np.abs(a - b)) / scale)


def randomize(variables, scale=0.1, seed=0):
    """Adds noise to trainable variables so that zero biases do not hide bugs."""
    rng = np.random.default_rng(seed)
    for v in variables:
        if v.trainable:
            v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(v.dtype))


def copy_weights(source, target):
    for s, t in zip(source.weights, target.weights):
        assert s.shape == t.shape, (s.path, t.path)
        t.assign(s)


def train_step_peak_bytes(model, batch, steps=1, image_size=32):
    """TF CPU allocator peak of one compiled training step above the memory in
    use before it (weights, optimizer state and everything else live)."""
    import keras

    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (batch, image_size, image_size, 3)), tf.float32)
    y = tf.constant(rng.integers(0, 10, (batch,)))
    optimizer = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    step()  # trace, create optimizer slots
    tf.config.experimental.reset_memory_stats("CPU:0")
    base = tf.config.experimental.get_memory_info("CPU:0")["current"]
    for _ in range(steps):
        step()
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - base
