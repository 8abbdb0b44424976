"""Losses the recipes use beyond Keras' own."""

import keras


@keras.saving.register_keras_serializable(package="zoo")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of probabilities against integer labels smoothed to
    (1 - ε)·one-hot + ε/K (Szegedy et al., "Rethinking the Inception
    Architecture", 2016): (1 - ε)·(-log p_y) + ε·mean_k(-log p_k).

    Keras' SparseCategoricalCrossentropy has no smoothing, and the one-hot
    CategoricalCrossentropy would change the labels every metric reads."""

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, "float32")
        log_p = keras.ops.log(keras.ops.clip(y_pred, keras.config.epsilon(), 1.0))
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        nll = -keras.ops.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
        if not self.label_smoothing:
            return nll
        uniform = -keras.ops.mean(log_p, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
