"""RevNet blocks of Gomez et al., "The Reversible Residual Network" (NeurIPS 2017)."""

import keras
import tensorflow as tf

from zoo.layers import ops
from zoo.layers.base import (
    Block,
    Coupling,
    HalvesCouplingBlock,
    WeightSpec,
    apply_batch_norm,
    batch_norm_specs,
)


def _residual_function_specs(prefix, in_channels, channels, kernel_size, initializer):
    """BN-ReLU-conv-BN-ReLU-conv (pre-activation basic residual function)."""
    k = kernel_size
    specs = {}
    specs.update(batch_norm_specs(f"{prefix}_bn1", in_channels))
    specs[f"{prefix}_conv1"] = WeightSpec((k, k, in_channels, channels), initializer, "kernel")
    specs.update(batch_norm_specs(f"{prefix}_bn2", channels))
    specs[f"{prefix}_conv2"] = WeightSpec((k, k, channels, channels), initializer, "kernel")
    return specs


def _residual_function(prefix, x, w, training, stats, strides=1):
    x = ops.relu(apply_batch_norm(f"{prefix}_bn1", x, w, training, stats))
    x = ops.conv(x, w[f"{prefix}_conv1"], strides=strides)
    x = ops.relu(apply_batch_norm(f"{prefix}_bn2", x, w, training, stats))
    return ops.conv(x, w[f"{prefix}_conv2"])


@keras.saving.register_keras_serializable(package="zoo")
class RevNetBlock(HalvesCouplingBlock):
    """Reversible residual block (Gomez et al. 2017, Eq. 1-2):

        y1 = x1 + F(x2)
        y2 = x2 + G(y1)

    with F and G pre-activation basic residual functions
    (BN-ReLU-conv3×3-BN-ReLU-conv3×3) on C/2 channels. The batch statistics of
    F and G are recomputed in the backward pass but the moving averages are
    only updated by the forward pass.
    """

    def __init__(self, kernel_size=3, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.kernel_initializer = kernel_initializer

    def weight_specs(self, channels):
        half = self._half(channels)
        specs = _residual_function_specs("f", half, half, self.kernel_size, self.kernel_initializer)
        specs.update(
            _residual_function_specs("g", half, half, self.kernel_size, self.kernel_initializer)
        )
        return specs

    def _f(self, x, w, step, training, stats):
        return _residual_function("f", x, w, training, stats)

    def _g(self, x, w, step, training, stats):
        return _residual_function("g", x, w, training, stats)

    def couplings(self):
        return (
            Coupling(target=0, source=1, fn=self._f),
            Coupling(target=1, source=0, fn=self._g),
        )

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, kernel_initializer=self.kernel_initializer)
        return config


@keras.saving.register_keras_serializable(package="zoo")
class RevNetDownsampleBlock(Block):
    """The non-reversible first block of a RevNet stage (Gomez et al. 2017):
    halves the resolution and widens the channels to `filters`.

        y1 = P(x1) + F(x2)      F: BN-ReLU-conv3×3/2 (C/2→filters/2)-BN-ReLU-conv3×3
        y2 = P(x2) + G(y1)      G: as in RevNetBlock, at filters/2 channels

    where P is 2×2 average pooling followed by zero-padding of channels. Its
    input is stored for backprop like any ordinary layer: one tensor per stage,
    independent of depth.
    """

    def __init__(self, filters, kernel_size=3, kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.kernel_initializer = kernel_initializer

    def weight_specs(self, channels):
        if channels % 2 or self.filters % 2:
            raise ValueError("RevNetDownsampleBlock needs even channel counts.")
        half, out = channels // 2, self.filters // 2
        specs = _residual_function_specs("f", half, out, self.kernel_size, self.kernel_initializer)
        specs.update(
            _residual_function_specs("g", out, out, self.kernel_size, self.kernel_initializer)
        )
        return specs

    def output_channels(self, channels):
        return self.filters

    def forward_step(self, state, weights, step, training):
        x1, x2 = tf.split(state[0], 2, axis=-1)
        stats = {}
        out = self.filters // 2
        y1 = ops.pad_channels(ops.downsample(x1, "avg"), out) + _residual_function(
            "f", x2, weights, training, stats, strides=2
        )
        y2 = ops.pad_channels(ops.downsample(x2, "avg"), out) + _residual_function(
            "g", y1, weights, training, stats
        )
        return (tf.concat([y1, y2], axis=-1),), stats

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        return (input_shape[0], None if h is None else (h + 1) // 2,
                None if w is None else (w + 1) // 2, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size,
                      kernel_initializer=self.kernel_initializer)
        return config
