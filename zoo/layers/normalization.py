"""Normalisation inside blocks, and the TV normalisation layer of Ruthotto &
Haber, "Deep Neural Networks Motivated by Partial Differential Equations"
(JMIV 2020)."""

import keras
import tensorflow as tf

from zoo.layers import ops
from zoo.layers.base import WeightSpec

NORMALIZATIONS = (None, "tv")


def check_normalization(kind):
    if kind not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}.")
    return kind


def normalization_specs(kind, name, channels, affine):
    """The learned per-channel scale and shift of normalisation `name`, if any."""
    if kind is None or not affine:
        return {}
    return {
        f"{name}_scale": WeightSpec((channels,), "ones", "gamma"),
        f"{name}_shift": WeightSpec((channels,), "zeros", "beta"),
    }


def normalize(kind, name, x, weights, affine, epsilon=ops.TV_EPSILON):
    """N(x) of the PDE-based blocks: identity, or TV normalisation with an
    optional learned per-channel scale and shift."""
    if kind is None:
        return x
    y = ops.tv_norm(x, epsilon)
    if affine:
        # Scale and shift are kept in float32 (like batch-norm parameters).
        scale = tf.cast(weights[f"{name}_scale"], y.dtype)
        shift = tf.cast(weights[f"{name}_shift"], y.dtype)
        y = y * scale + shift
    return y


@keras.saving.register_keras_serializable(package="zoo")
class TVNormalization(keras.layers.Layer):
    """y / sqrt(Σ_c y² + ε) per pixel, then an optional learned per-channel
    scale and shift (Ruthotto & Haber 2020; ε = 1e-4 as in Meganet)."""

    def __init__(self, epsilon=ops.TV_EPSILON, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.affine = bool(affine)

    def build(self, input_shape):
        if self.affine:
            channels = int(input_shape[-1])
            self.scale = self.add_weight(name="scale", shape=(channels,), initializer="ones")
            self.shift = self.add_weight(name="shift", shape=(channels,), initializer="zeros")

    def call(self, inputs):
        y = ops.tv_norm(inputs, self.epsilon)
        if self.affine:
            y = y * self.scale + self.shift
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, affine=self.affine)
        return config
