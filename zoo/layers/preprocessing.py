"""Input preprocessing carried inside the models."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="zoo")
class PerImageStandardization(keras.layers.Layer):
    """Per-image standardisation, as in the paper's input pipeline:

        (x − mean(x)) / max(std(x), 1/sqrt(H·W·C))

    computed per image over all pixels and channels (`tf.image.
    per_image_standardization`). Accepts uint8 or float images with values in
    [0, 255]; the result does not depend on the scale of the input. Always runs
    in float32 (also under mixed precision) because bfloat16 cannot hold the
    pixel sums exactly.
    """

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def call(self, inputs):
        return tf.image.per_image_standardization(tf.cast(inputs, tf.float32))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return config
