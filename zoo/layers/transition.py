"""Transitions between units."""

import keras

from zoo.layers import ops


@keras.saving.register_keras_serializable(package="zoo")
class PoolAndPad(keras.layers.Layer):
    """2×2 average pooling, then zero-padding of channels to `channels`.

    The parameter-free transition between the units of the Hamiltonian,
    MidPoint and Leapfrog networks (authors' code). `groups=2` pads the halves
    (Y, Z) of a split state separately so that each keeps its role.
    """

    def __init__(self, channels, groups=1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.groups = int(groups)

    def call(self, inputs):
        return ops.pad_channels(ops.downsample(inputs, "avg"), self.channels, self.groups)

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        return (input_shape[0], None if h is None else h // 2,
                None if w is None else w // 2, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, groups=self.groups)
        return config
