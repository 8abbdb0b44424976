"""Pieces every model builder shares: input checks, stem, head, weights."""

import os

import keras

from zoo.layers import (
    HamiltonianBlock,
    PerImageStandardization,
    PoolAndPad,
    ReversibleUnit,
    TVNormalization,
)
from zoo.regularizers import weight_decay_regularizer

__all__ = ["reversible_ode_network"]

DEFAULT_INPUT_SHAPE = (32, 32, 3)
# Two 2× downsamplings: the last unit must still see at least 2×2 pixels.
MIN_SIZE = 8


def validate_input_shape(input_shape):
    """Checks (H, W, C) and returns it as a tuple. H and W may be None: the
    networks are convolutional up to the global pooling, with or without the
    classifier."""
    if input_shape is None:
        return DEFAULT_INPUT_SHAPE
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
    if len(shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {input_shape!r} "
            f"with {len(shape)} dimensions."
        )
    h, w, c = shape
    if c is None or c < 1:
        raise ValueError(f"The number of channels must be known and positive, got {input_shape!r}.")
    for size in (h, w):
        if size is None:
            continue
        if size < MIN_SIZE:
            raise ValueError(
                f"Images must be at least {MIN_SIZE}×{MIN_SIZE} pixels; got input_shape {input_shape!r}."
            )
    return shape


def validate_head(include_top, classes, pooling, classifier_activation):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}.")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"classes must be a positive integer, got {classes!r}.")
    if include_top and classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError):
            raise ValueError(f"classifier_activation must be None (logits), 'softmax' or "
                             f"another Keras activation, got {classifier_activation!r}.") from None


def model_inputs(input_shape, input_tensor=None):
    """The image input (values in [0, 255], any real or integer dtype) and
    its per-image standardisation."""
    if input_tensor is not None:
        inputs = input_tensor
    else:
        inputs = keras.Input(shape=input_shape, name="images")
    return inputs, PerImageStandardization(name="standardize")(inputs)


def normalization_layer(kind, name, synchronized_bn=False):
    """"batch" (BatchNormalization) or "tv" (TVNormalization)."""
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name, synchronized=synchronized_bn)
    if kind == "tv":
        return TVNormalization(name=name)
    raise ValueError(f"Unknown normalization {kind!r}.")


def stem(x, channels, weight_decay, use_bias=False, synchronized_bn=False, normalization="batch"):
    """3×3 convolution + normalisation + ReLU (the opening layer of every model).

    synchronized_bn: batch statistics over all replicas of a distribution
    strategy instead of per replica (for results independent of the number
    of replicas).
    """
    x = keras.layers.Conv2D(
        channels, 3, padding="same", use_bias=use_bias, name="stem_conv",
        kernel_initializer="he_normal",
        kernel_regularizer=weight_decay_regularizer(weight_decay),
    )(x)
    x = normalization_layer(normalization, "stem_norm" if normalization != "batch" else "stem_bn",
                            synchronized_bn)(x)
    return keras.layers.ReLU(name="stem_relu")(x)


def head(x, inputs, name, *, include_top, classes, pooling, classifier_activation,
         weight_decay, final_norm=True, synchronized_bn=False):
    """Optional final BN + ReLU, then pooling and the classifier; returns the Model."""
    if final_norm:
        x = keras.layers.BatchNormalization(name="final_bn", synchronized=synchronized_bn)(x)
        x = keras.layers.ReLU(name="final_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # The classifier runs in the variable dtype (float32 under mixed precision).
        x = keras.layers.Dense(
            classes,
            activation=classifier_activation,
            kernel_regularizer=weight_decay_regularizer(weight_decay),
            dtype=keras.config.dtype_policy().variable_dtype,
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)


def classifier(
    name,
    stem_channels,
    body,
    *,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    weight_decay=0.0,
    synchronized_bn=False,
    final_norm=True,
    stem_normalization="batch",
):
    """Assembles a model: inputs and standardisation, stem, `body`, head.

    `body(x)` adds the architecture's units to the stem's output. The keyword
    arguments are those of keras.applications builders (plus weight_decay and
    synchronized_bn); every zoo builder passes them through to here.
    """
    input_shape = validate_input_shape(input_shape)
    validate_head(include_top, classes, pooling, classifier_activation)
    inputs, x = model_inputs(input_shape, input_tensor)
    x = stem(x, stem_channels, weight_decay, synchronized_bn=synchronized_bn,
             normalization=stem_normalization)
    x = body(x)
    model = head(
        x, inputs, name, include_top=include_top, classes=classes, pooling=pooling,
        classifier_activation=classifier_activation, weight_decay=weight_decay,
        final_norm=final_norm, synchronized_bn=synchronized_bn,
    )
    return load_weights(model, weights)


def load_weights(model, weights):
    """weights: None (random initialisation) or the path of a Keras weights file."""
    if weights is None:
        return model
    if isinstance(weights, (str, os.PathLike)) and os.path.exists(weights):
        model.load_weights(weights)
        return model
    raise ValueError(
        f"weights must be None or the path of an existing weights file, got {weights!r}."
    )


def reversible_ode_network(block, blocks_per_unit, widths, name, *, reversible=True,
                           weight_decay=0.0, smoothness_decay=0.0, control_points=None,
                           **kwargs):
    """Builds a network of `block`s in the layout of Chang et al. (2018).

    Layout (from the authors' code): a 3×3 convolution to 32 channels + BN + ReLU;
    three units of n blocks; the first block of units 2 and 3 runs at the old
    width and resolution, then 2×2 average pooling and zero-padding of channels;
    final BN + ReLU + global average pooling + dense.

    Because the first block of unit k+1 runs at the resolution and width of unit
    k, it is the last time step of the same ODE: we run it inside that unit's
    loop. The three loops therefore hold n+1, n and n−1 blocks. This is the same
    function and parameter count as the paper's grouping; the smoothness decay
    (Eq. 22) couples that block with its neighbours in time.

    Args:
      block: template block (its hyper-parameters are used, e.g. h).
      blocks_per_unit: n, the number of blocks of each of the three units.
      widths: channels of the three units.
      reversible: backprop by reconstruction (True) or plain autodiff (False).
      weight_decay: λ of (λ/2)Σw² on every kernel (SGD weight decay λ).
      smoothness_decay: coefficient of the smoothness term of Eq. 22.
      control_points: weights on their own time grid: at most this many
        weight sets per unit, linearly interpolated (None: one per block).
      **kwargs: as in `classifier` (keras.applications arguments;
        synchronized_bn applies to the stem and final BN, the blocks have none).
    """
    n = int(blocks_per_unit)
    if n < 2:
        raise ValueError(f"Each unit needs at least 2 blocks, got {n}.")
    groups = 2 if isinstance(block, HamiltonianBlock) else 1

    def body(x):
        for k, (depth, width) in enumerate(zip((n + 1, n, n - 1), widths)):
            if k > 0:
                x = PoolAndPad(width, groups=groups, name=f"transition{k}")(x)
            x = ReversibleUnit(
                block, depth, reversible=reversible, weight_decay=weight_decay,
                smoothness_decay=smoothness_decay, name=f"unit{k + 1}",
                control_points=None if control_points is None else min(control_points, depth),
            )(x)
        return x

    return classifier(name, widths[0], body, weight_decay=weight_decay, **kwargs)
