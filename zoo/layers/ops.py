"""Functional tensor operations shared by the blocks.

The blocks are written as functions of explicit weight tensors so that the same
code runs a standalone block (its own variables) and one step of a
`StackedUnit` (a slice of stacked variables inside a `tf.while_loop`).
"""

import contextlib

import tensorflow as tf

# Keras' BatchNormalization defaults, so that a stacked unit behaves like a
# sequence of ordinary Keras layers.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3

_momentum_override = []


def moving_statistics_momentum():
    """The momentum of the blocks' moving batch-norm statistics: BN_MOMENTUM,
    or the value of the innermost `override_moving_statistics_momentum`.

    Read when a layer's call is run (eagerly) or traced (in a tf.function), so
    an override reaches eager calls and functions traced inside it.
    """
    return _momentum_override[-1] if _momentum_override else BN_MOMENTUM


@contextlib.contextmanager
def override_moving_statistics_momentum(momentum):
    """Within the block, the blocks update their moving statistics with
    `momentum` (0 replaces them by the batch statistics)."""
    momentum = float(momentum)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}.")
    _momentum_override.append(momentum)
    try:
        yield
    finally:
        _momentum_override.pop()


def conv(x, kernel, strides=1):
    """3×3 (or k×k) convolution with zero 'SAME' padding, K·x in the papers."""
    return tf.nn.conv2d(x, kernel, strides=strides, padding="SAME")


def conv_transpose(x, kernel):
    """K^T·x: the adjoint of `conv(·, kernel)` at stride 1.

    Implemented as a convolution with the spatially flipped kernel whose input
    and output channels are swapped. For odd kernel sizes and 'SAME' zero
    padding this is exactly the transpose of the linear map `conv`, which is
    what Eq. 10 and Eq. 17 of Chang et al. (2018) need, and it runs through the
    same fast convolution kernel as the forward operator.
    """
    flipped = tf.reverse(tf.transpose(kernel, [0, 1, 3, 2]), axis=[0, 1])
    return tf.nn.conv2d(x, flipped, strides=1, padding="SAME")


def batch_norm(x, gamma, beta, moving_mean, moving_variance, training):
    """Batch normalisation over N, H, W as a pure function.

    Returns the normalised tensor and the batch statistics (or None at
    inference). Statistics are computed in float32 whatever the compute dtype,
    as Keras does under mixed precision. The caller decides whether and when
    the moving averages are updated; a block never updates them itself, which
    is what keeps a recomputation in the reversible backward pass from updating
    them a second time.

    In training, 4-D float32/bfloat16/float16 inputs go through TensorFlow's
    fused kernel (FusedBatchNormV3, forward and gradient), 2.5-4× faster than
    the moments-and-normalise graph on a 2-core CPU (fwd+bwd at 128×32×32×16:
    3.9 against 11.2 ms in float32, 4.1 against 15.6 ms in bfloat16); other
    dtypes (float64, which the gradient tests use) take that graph, with the
    same results up to rounding.
    """
    if training and x.shape.rank == 4 and x.dtype in (tf.float32, tf.bfloat16, tf.float16):
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32), epsilon=BN_EPSILON,
            is_training=True)
        # The kernel returns the Bessel-corrected variance (for moving
        # averages); the statistics here are the biased one it normalised with.
        n = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
        return y, (mean, variance * (n - 1.0) / n)
    x32 = tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x
    stat_dtype = x32.dtype
    gamma = tf.cast(gamma, stat_dtype)
    beta = tf.cast(beta, stat_dtype)
    if training:
        mean, variance = tf.nn.moments(x32, axes=[0, 1, 2])
        stats = (mean, variance)
    else:
        mean = tf.cast(moving_mean, stat_dtype)
        variance = tf.cast(moving_variance, stat_dtype)
        stats = None
    y = tf.nn.batch_normalization(x32, mean, variance, beta, gamma, BN_EPSILON)
    return tf.cast(y, x.dtype), stats


def relu(x):
    return tf.nn.relu(x)


def pad_channels(x, channels, groups=1):
    """Zero-pads the channel axis to `channels`, each of `groups` groups equally.

    With groups=2 the halves (Y, Z) of a split state are padded separately, so
    that Y stays Y and Z stays Z after a transition.
    """
    current = x.shape[-1]
    if channels == current:
        return x
    if channels < current or channels % groups or current % groups:
        raise ValueError(
            f"Cannot pad {current} channels to {channels} in {groups} equal groups."
        )
    extra = (channels - current) // groups
    parts = tf.split(x, groups, axis=-1) if groups > 1 else [x]
    parts = [tf.pad(p, [[0, 0], [0, 0], [0, 0], [0, extra]]) for p in parts]
    return tf.concat(parts, axis=-1) if groups > 1 else parts[0]


def downsample(x, method):
    """Halves the spatial size: 'avg' (2×2 average pooling) or 'subsample' (stride 2)."""
    if method == "avg":
        return tf.nn.avg_pool2d(x, 2, 2, "VALID")
    if method == "subsample":
        return x[:, ::2, ::2, :]
    raise ValueError(f"Unknown downsampling method {method!r}.")


# Ruthotto & Haber's Meganet code uses this epsilon in its TV normalisation.
TV_EPSILON = 1e-4


def tv_norm(x, epsilon=TV_EPSILON):
    """Total-variation normalisation of Ruthotto & Haber (2020): every pixel's
    channel vector divided by its length, y / sqrt(Σ_c y² + ε).

    Computed in float32 under mixed precision: a sum of squares in bfloat16
    loses most of its digits, and ε = 1e-4 is below bfloat16's resolution
    near 1.
    """
    x32 = tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x
    y = x32 * tf.math.rsqrt(tf.reduce_sum(tf.square(x32), axis=-1, keepdims=True) + epsilon)
    return tf.cast(y, x.dtype)
