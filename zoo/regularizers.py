"""Weight decay and the weight-smoothness decay of Chang et al. (2018), Eq. 22."""

import keras
import tensorflow as tf


def weight_decay_regularizer(weight_decay):
    """(weight_decay / 2) Σ w²: the loss term whose gradient is SGD weight decay.

    Returns None for 0 so that no regulariser is attached.
    """
    if not weight_decay:
        return None
    return keras.regularizers.L2(weight_decay / 2.0)


@keras.saving.register_keras_serializable(package="zoo")
class StackedKernelRegularizer(keras.regularizers.Regularizer):
    """Regulariser of the stacked kernels K_0 … K_{N-1} of one unit:

        (weight_decay / 2) Σ_j ||K_j||²  +  smoothness_decay · h Σ_j ||(K_{j+1} − K_j) / h||²

    The second term is the weight-smoothness decay of Chang et al. (2018),
    Eq. 22: it penalises the time derivative of the kernels, so that the
    blocks of a unit discretise one smooth ODE trajectory.
    """

    def __init__(self, weight_decay=0.0, smoothness_decay=0.0, h=1.0):
        self.weight_decay = float(weight_decay)
        self.smoothness_decay = float(smoothness_decay)
        self.h = float(h)
        if self.h <= 0:
            raise ValueError(f"h must be positive, got {h}.")

    def __call__(self, kernels):
        kernels = tf.convert_to_tensor(kernels)
        loss = tf.zeros((), kernels.dtype)
        if self.weight_decay:
            loss += (self.weight_decay / 2.0) * tf.reduce_sum(tf.square(kernels))
        if self.smoothness_decay and kernels.shape[0] > 1:
            diff = (kernels[1:] - kernels[:-1]) / self.h
            loss += self.smoothness_decay * self.h * tf.reduce_sum(tf.square(diff))
        return loss

    def get_config(self):
        return {
            "weight_decay": self.weight_decay,
            "smoothness_decay": self.smoothness_decay,
            "h": self.h,
        }
