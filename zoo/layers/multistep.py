"""Two-step (multistep) blocks of Chang et al. (AAAI 2018): MidPoint (Eq. 15) and
Leapfrog (Eq. 17).

Both carry the pair state (Y_{j-1}, Y_j) and return (Y_j, Y_{j+1}), which makes
them exactly invertible: Y_{j-1} is recovered from Y_j and Y_{j+1}.

Starting a unit. A unit receives one tensor Y_0 and starts from the pair
(Y_0, Y_0). The first step (index 0 in its unit) uses a one-step start so that
Y_1 is a consistent approximation of the ODE solution:
  * MidPoint: forward Euler, Y_1 = Y_0 + h σ(A_0 Y_0 + b_0) (as in the paper);
  * Leapfrog: the paper's j = 0 line is ambiguous (read literally with
    Y_{-1} = 0 it doubles Y_0). We take zero initial velocity in the
    central-difference sense, Y_{-1} = Y_1, which gives the standard
    Störmer-Verlet start Y_1 = Y_0 − (h²/2) K_0^T σ(K_0 Y_0 + b_0).
Both starts are the general step applied to (Y_0, Y_0) with the coefficient
halved, so the same code path (and inverse) serves every step. A unit hands
on Y_N, the second element of its final pair.
"""

import keras
import tensorflow as tf

from zoo.layers import ops
from zoo.layers.base import Coupling, CouplingBlock
from zoo.layers.conv_step import ConvStepHyperparameters
from zoo.layers.normalization import normalize


class _TwoStepBlock(ConvStepHyperparameters, CouplingBlock):
    """Shared weights and state handling of the two-step schemes."""

    permutation = (1, 0)

    def __init__(self, h=0.1, kernel_size=3, first_step=False, normalization=None,
                 norm_affine=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self._set_step_hyperparameters(h, kernel_size, normalization, norm_affine,
                                       kernel_initializer, bias_initializer)
        self.first_step = bool(first_step)

    @property
    def standalone_step(self):
        return 0 if self.first_step else 1

    def weight_specs(self, channels):
        return self._full_width_specs(channels)

    def _normalized(self, a, w):
        return normalize(self.normalization, "n", a, w, self.norm_affine)

    def _coefficient(self, full, step, dtype):
        """`full` for steps j ≥ 1, full / 2 for the one-step start j = 0."""
        if isinstance(step, int):
            return tf.constant(full / 2 if step == 0 else full, dtype)
        return tf.where(tf.equal(step, 0), tf.constant(full / 2, dtype), tf.constant(full, dtype))

    # Standalone use takes and returns the pair [Y_{j-1}, Y_j].
    def input_to_state(self, x):
        if not isinstance(x, (list, tuple)) or len(x) != 2:
            raise ValueError(
                f"{type(self).__name__} takes the pair [Y_prev, Y_cur] as input."
            )
        return tuple(x)

    def state_to_output(self, state):
        return list(state)

    def unit_entry(self, x):
        return (x, x)

    def unit_exit(self, state):
        return state[1]

    def get_config(self):
        return {**super().get_config(), **self._step_config(), "first_step": self.first_step}


@keras.saving.register_keras_serializable(package="zoo")
class MidpointBlock(_TwoStepBlock):
    """MidPoint step (Chang et al. 2018, Eq. 15) with an antisymmetric operator:

        Y_{j+1} = Y_{j-1} + 2h σ((K_j − K_j^T) Y_j + b_j),     j ≥ 1
        Y_1     = Y_0     +  h σ((K_0 − K_0^T) Y_0 + b_0)       (forward Euler)

    K − K^T is the convolution minus its transpose (same kernel), so the
    linearised right-hand side has purely imaginary eigenvalues.
    """

    def vector_field(self, state, weights):
        """dY/dt = σ((K − K^T) Y + b) (Chang et al. 2018, Eq. 14); its Jacobian
        D (K − K^T) is similar to the antisymmetric D^½ (K − K^T) D^½, so its
        eigenvalues are purely imaginary. `state` is (Y,)."""
        (y,) = state
        return (ops.relu(self._normalized(
            ops.conv(y, weights["k"]) - ops.conv_transpose(y, weights["k"]) + weights["b"],
            weights)),)

    def _rhs(self, y, w, step, training, stats):
        k = w["k"]
        coef = self._coefficient(2 * self.h, step, y.dtype)
        return coef * ops.relu(self._normalized(ops.conv(y, k) - ops.conv_transpose(y, k) + w["b"], w))

    def couplings(self):
        return (Coupling(target=0, source=1, fn=self._rhs),)


@keras.saving.register_keras_serializable(package="zoo")
class LeapfrogBlock(_TwoStepBlock):
    """Leapfrog step (Chang et al. 2018, Eq. 17):

        Y_{j+1} = 2 Y_j − Y_{j-1} − h² K_j^T σ(K_j Y_j + b_j),      j ≥ 1
        Y_1     = Y_0 − (h²/2) K_0^T σ(K_0 Y_0 + b_0)                (Y_{-1} = Y_1)

    See the module docstring for the choice of the start. With
    normalization="tv" it is the second-order (hyperbolic) block of Ruthotto &
    Haber (2020), Y_{j+1} = 2Y_j − Y_{j−1} − h² K^T σ(N(K Y_j + b)).
    """

    def vector_field(self, state, weights):
        """The second-order system d²Y/dt² = −K^T σ(K Y + b) (Chang et al. 2018,
        Eq. 16) as a first-order one in (Y, V): dY/dt = V, dV/dt = −K^T σ(KY + b).
        Its Jacobian [[0, I], [−K^T D K, 0]] has purely imaginary eigenvalues."""
        y, v = state
        k = weights["k"]
        return v, -ops.conv_transpose(ops.relu(self._normalized(ops.conv(y, k) + weights["b"],
                                                                 weights)), k)

    def _rhs(self, y, w, step, training, stats):
        k = w["k"]
        coef = self._coefficient(self.h * self.h, step, y.dtype)
        return -coef * ops.conv_transpose(ops.relu(self._normalized(ops.conv(y, k) + w["b"], w)), k)

    def couplings(self):
        return (Coupling(target=0, source=1, fn=self._rhs, scale=-1.0, source_scale=2.0),)
