"""A network's body with a new classifier on it: the structure of a
fine-tuned model (zoo.training.finetune trains it, zoo.pretrained.finetuned
loads it)."""

import keras

from zoo.regularizers import weight_decay_regularizer

POOLING = "avg"
BACKBONE_LAYER = "backbone"
HEAD_LAYER = "predictions"


@keras.saving.register_keras_serializable(package="zoo")
class Backbone(keras.layers.Layer):
    """Runs a feature-extractor model; while frozen, always in inference mode.

    Keras 3 puts a frozen BatchNormalization layer in inference mode by
    itself, but the zoo's units compute their blocks' batch norms from the
    `training` flag alone (`zoo.layers.unit.StackedUnit`), and a functional
    model overrides a `training=False` recorded at construction with the one
    `fit` passes. Deciding the mode here, from `trainable`, freezes every
    kind of layer the same way: no weight and no moving statistic changes.
    """

    def __init__(self, network, **kwargs):
        # float32: the wrapper must not cast the pixels; the network's own
        # layers carry the dtype policy they were built with.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.network = network

    def freeze(self, frozen):
        """Sets `trainable` to `not frozen` (compile the model afterwards)."""
        self.trainable = not frozen

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        return self.network(inputs, training=bool(training) and self.trainable)

    def compute_output_shape(self, input_shape):
        return self.network.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config["network"] = keras.saving.serialize_keras_object(self.network)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


def assemble(backbone, classes, weight_decay=0.0):
    """The classifier: images -> `backbone` (pooled features) -> softmax over
    `classes`. Layers are named `BACKBONE_LAYER` and `HEAD_LAYER`."""
    inputs = keras.Input(shape=backbone.input_shape[1:], name="images")
    features = Backbone(backbone, name=BACKBONE_LAYER)(inputs)
    # The classifier runs in the variable dtype (float32 under mixed
    # precision), as the zoo's own heads do: a bfloat16 softmax over 100
    # classes would lose the small probabilities.
    outputs = keras.layers.Dense(
        classes, activation="softmax", name=HEAD_LAYER,
        kernel_regularizer=weight_decay_regularizer(weight_decay),
        dtype=keras.config.dtype_policy().variable_dtype)(features)
    return keras.Model(inputs, outputs, name=f"{backbone.name}_finetuned")
