"""Initialisers for stacked (per-block) weights."""

import keras


@keras.saving.register_keras_serializable(package="zoo")
class StackedInitializer(keras.initializers.Initializer):
    """Initialises a (depth, *shape) weight slice by slice with `initializer`.

    Fan-in/fan-out based initialisers (Glorot, He) must see the shape of one
    block's kernel, not the stack, to give each block the variance it would
    have as a standalone layer.
    """

    def __init__(self, initializer):
        self.initializer = keras.initializers.get(initializer)

    def __call__(self, shape, dtype=None):
        return keras.ops.stack(
            [self.initializer(tuple(shape[1:]), dtype=dtype) for _ in range(shape[0])]
        )

    def get_config(self):
        return {"initializer": keras.initializers.serialize(self.initializer)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.initializers.deserialize(config["initializer"]))
