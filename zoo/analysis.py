"""Measurements of a model's training step: memory, and activation memory per sample.

The TensorFlow CPU allocator keeps a peak counter
(`tf.config.experimental.get_memory_info`). The peak of one compiled training
step above what was in use before it is the step's working memory:
activations (or, with the reversible engine, one block's worth of them), the
gradients and temporaries. Its slope over the batch size cancels everything
that does not depend on the batch (weights, gradients, optimizer state) and
leaves the activation memory a sample costs, the quantity that grows with
depth for autodiff and must not for the reversible engine (Chang et al. 2018,
Section 3.3).

The allocator counts only tensors TensorFlow allocates on the CPU: the
figures are comparable between models measured the same way, not the
process's resident memory.
"""

import numpy as np
import tensorflow as tf


def train_step_peak_bytes(model, batch, steps=1, device="CPU:0", seed=0):
    """Peak allocator bytes of `steps` compiled SGD training steps on random
    images of the model's input size, above the memory in use before them.

    The step is traced and run once first, so optimizer slots and the traced
    graph are already allocated when the measurement starts.
    """
    import keras

    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}.")
    height, width, channels = model.input_shape[1:]
    outputs = model.output_shape[-1]
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.integers(0, 256, (batch, height, width, channels)), tf.float32)
    y = tf.constant(rng.integers(0, outputs, (batch,)))
    optimizer = keras.optimizers.SGD(0.01)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    step()
    tf.config.experimental.reset_memory_stats(device)
    base = tf.config.experimental.get_memory_info(device)["current"]
    for _ in range(steps):
        step()
    return tf.config.experimental.get_memory_info(device)["peak"] - base


def activation_bytes_per_sample(build, batches=(8, 32), device="CPU:0"):
    """Slope of the training-step peak over the batch size, in bytes per sample.

    Args:
      build: a function of no arguments returning a fresh model (one per batch
        size, so that the two measurements share nothing).
      batches: the two batch sizes.
    """
    import keras

    small, large = batches
    if not 0 < small < large:
        raise ValueError(f"batches must be two increasing sizes, got {batches}.")
    peaks = []
    for batch in (small, large):
        keras.utils.set_random_seed(0)
        peaks.append(train_step_peak_bytes(build(), batch, device=device))
        keras.backend.clear_session()
    return (peaks[1] - peaks[0]) / (large - small)
