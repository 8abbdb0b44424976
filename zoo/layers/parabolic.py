"""The parabolic block of Ruthotto & Haber, "Deep Neural Networks Motivated by
Partial Differential Equations" (JMIV 2020)."""

import keras
import tensorflow as tf

from zoo.layers import ops
from zoo.layers.base import Block
from zoo.layers.conv_step import ConvStepHyperparameters
from zoo.layers.normalization import normalize


@keras.saving.register_keras_serializable(package="zoo")
class ParabolicBlock(ConvStepHyperparameters, Block):
    """One forward-Euler step of the parabolic (heat-equation-like) network:

        Y_{j+1} = Y_j − h K_j^T σ(N(K_j Y_j + b_j))

    with their symmetric layer F_sym and N the TV normalisation. The
    right-hand side is the negative gradient of a convex potential (for
    monotone σ), so the continuous dynamics are stable; forward Euler is stable
    when h · L · ||K||² ≤ 2, L the Lipschitz constant of σ∘N. TV normalisation
    has no fixed L (its derivative grows like 1/sqrt(ε) near zero), so no h
    is guaranteed: we use h = 0.1, the value of the other blocks, and the
    learned scale of N keeps L in check in practice. (The authors' CIFAR-10
    driver in Meganet.m uses h = 1; see docs/pde_step_size/.)

    Not invertible (diffusion loses information): a unit of parabolic blocks
    trains with ordinary backprop and stores its activations.
    """

    def __init__(self, h=0.1, kernel_size=3, normalization="tv", norm_affine=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self._set_step_hyperparameters(h, kernel_size, normalization, norm_affine,
                                       kernel_initializer, bias_initializer)

    def weight_specs(self, channels):
        return self._full_width_specs(channels)

    def forward_step(self, state, weights, step, training):
        (y,) = state
        k = weights["k"]
        # The update runs in the compute dtype; the state keeps its own (float32
        # under mixed precision), as in the coupling blocks.
        a = normalize(self.normalization, "n",
                      ops.conv(tf.cast(y, self.compute_dtype), k) + weights["b"], weights,
                      self.norm_affine)
        update = self.h * ops.conv_transpose(ops.relu(a), k)
        return (y - tf.cast(update, y.dtype),), {}

    def get_config(self):
        return {**super().get_config(), **self._step_config()}
