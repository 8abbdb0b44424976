"""The CIFAR ResNet block of He et al., "Deep Residual Learning for Image
Recognition" (CVPR 2016), Section 4.2."""

import keras
import tensorflow as tf

from zoo.layers import ops
from zoo.layers.base import Block, WeightSpec, apply_batch_norm, batch_norm_specs


@keras.saving.register_keras_serializable(package="zoo")
class ResidualBlock(Block):
    """Post-activation basic block: y = ReLU(S(x) + BN(conv(ReLU(BN(conv(x)))))).

    With strides=2 the first convolution halves the resolution and the shortcut
    S is the parameter-free option A of He et al.: subsampling by 2 and zero
    padding of the new channels. Otherwise S is the identity. Not invertible:
    stacked in a `StackedUnit` it trains with ordinary backprop.
    """

    def __init__(self, filters=None, strides=1, kernel_size=3,
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.filters = None if filters is None else int(filters)
        self.strides = int(strides)
        self.kernel_size = int(kernel_size)
        self.kernel_initializer = kernel_initializer

    def output_channels(self, channels):
        return self.filters or channels

    def weight_specs(self, channels):
        out = self.output_channels(channels)
        k = self.kernel_size
        specs = {"conv1": WeightSpec((k, k, channels, out), self.kernel_initializer, "kernel")}
        specs.update(batch_norm_specs("bn1", out))
        specs["conv2"] = WeightSpec((k, k, out, out), self.kernel_initializer, "kernel")
        specs.update(batch_norm_specs("bn2", out))
        return specs

    def forward_step(self, state, weights, step, training):
        (state_tensor,) = state
        # Computed in the compute dtype; the unit's state keeps its own.
        x = tf.cast(state_tensor, self.compute_dtype)
        stats = {}
        out = weights["conv2"].shape[-1]
        r = ops.conv(x, weights["conv1"], strides=self.strides)
        r = ops.relu(apply_batch_norm("bn1", r, weights, training, stats))
        r = ops.conv(r, weights["conv2"])
        r = apply_batch_norm("bn2", r, weights, training, stats)
        shortcut = x
        if self.strides != 1:
            shortcut = ops.downsample(shortcut, "subsample")
        shortcut = ops.pad_channels(shortcut, out)
        return (tf.cast(ops.relu(shortcut + r), state_tensor.dtype),), stats

    def compute_output_shape(self, input_shape):
        s = self.strides
        h, w = input_shape[1], input_shape[2]
        return (input_shape[0], None if h is None else -(-h // s),
                None if w is None else -(-w // s), self.output_channels(input_shape[-1]))

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides,
                      kernel_size=self.kernel_size, kernel_initializer=self.kernel_initializer)
        return config
