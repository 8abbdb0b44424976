"""Hamiltonian block of Chang et al. (AAAI 2018), Eq. 10."""

import keras

from zoo.layers import ops
from zoo.layers.base import Coupling, HalvesCouplingBlock, WeightSpec
from zoo.layers.conv_step import ConvStepHyperparameters
from zoo.layers.normalization import normalization_specs, normalize


@keras.saving.register_keras_serializable(package="zoo")
class HamiltonianBlock(ConvStepHyperparameters, HalvesCouplingBlock):
    """One Verlet step of the Hamiltonian network (Chang et al. 2018, Eq. 10):

        Y_{j+1} = Y_j     + h K_{j1}^T σ(K_{j1} Z_j     + b_{j1})
        Z_{j+1} = Z_j     − h K_{j2}^T σ(K_{j2} Y_{j+1} + b_{j2})

    The input's channels are split into halves Y (first) and Z (second), as in
    the authors' code; σ is ReLU and K^T is the transposed convolution with the
    same kernel. Each half has C/2 channels and so do the hidden features.
    The step is symplectic and exactly invertible:

        Z_j = Z_{j+1} + h K_{j2}^T σ(K_{j2} Y_{j+1} + b_{j2})
        Y_j = Y_{j+1} − h K_{j1}^T σ(K_{j1} Z_j     + b_{j1})

    With normalization="tv" it is the hyperbolic Hamiltonian block of
    Ruthotto & Haber (2020) with their symmetric layer F_sym = K^T σ(N(K·+b)),
    N the TV normalisation: σ(K z + b) becomes σ(N(K z + b)).

    Args:
      h: step size (0.1 by default; the authors' code configures 1.0, see
        docs/hamiltonian_step_size/).
      kernel_size: spatial size of K (3).
      normalization: None or "tv".
      norm_affine: learned per-channel scale and shift after the normalisation.
      kernel_initializer, bias_initializer: for a standalone block and for
        each slice of a stacked unit.
    """

    def __init__(self, h=0.1, kernel_size=3, normalization=None, norm_affine=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self._set_step_hyperparameters(h, kernel_size, normalization, norm_affine,
                                       kernel_initializer, bias_initializer)

    def weight_specs(self, channels):
        half = self._half(channels)
        k = self.kernel_size
        return {
            "k1": WeightSpec((k, k, half, half), self.kernel_initializer, "kernel"),
            "b1": WeightSpec((half,), self.bias_initializer, "bias"),
            "k2": WeightSpec((k, k, half, half), self.kernel_initializer, "kernel"),
            "b2": WeightSpec((half,), self.bias_initializer, "bias"),
            **normalization_specs(self.normalization, "n1", half, self.norm_affine),
            **normalization_specs(self.normalization, "n2", half, self.norm_affine),
        }

    def _layer(self, x, w, index):
        """K_i^T σ(N(K_i x + b_i))."""
        k = w[f"k{index}"]
        a = normalize(self.normalization, f"n{index}", ops.conv(x, k) + w[f"b{index}"], w,
                      self.norm_affine)
        return ops.conv_transpose(ops.relu(a), k)

    def _momentum_update(self, z, w, step, training, stats):
        return self.h * self._layer(z, w, 1)

    def _position_update(self, y, w, step, training, stats):
        return -self.h * self._layer(y, w, 2)

    def vector_field(self, state, weights):
        """The continuous right-hand side the step discretises (Chang et al.
        2018, Eq. 9 in the symmetric form of Eq. 10):

            dY/dt =  K1^T σ(K1 Z + b1),    dZ/dt = −K2^T σ(K2 Y + b2).

        Its Jacobian [[0, K1^T D1 K1], [−K2^T D2 K2, 0]] (D = σ' ≥ 0) has
        purely imaginary eigenvalues: the product of the two symmetric
        positive semi-definite blocks has non-negative real eigenvalues.
        """
        y, z = state
        return self._layer(z, weights, 1), -self._layer(y, weights, 2)

    def couplings(self):
        return (
            Coupling(target=0, source=1, fn=self._momentum_update),
            Coupling(target=1, source=0, fn=self._position_update),
        )

    def get_config(self):
        return {**super().get_config(), **self._step_config()}
