"""Initialisers for stacked (per-block) weights."""

import keras
import numpy as np


def _reseeded(initializer, entropy):
    """A copy of a random initializer seeded from its own integer seed and
    `entropy` (ints); the initializer itself when it is not random or draws
    anew on every call (seeded by a SeedGenerator)."""
    seed = getattr(initializer, "seed", None)
    # isinstance(True, int) holds, but no Keras seed is a bool.
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        return initializer
    config = initializer.get_config()
    config["seed"] = int(np.random.SeedSequence([int(seed), *entropy]).generate_state(1)[0] >> 1)
    return type(initializer).from_config(config)


def for_weight(initializer, name):
    """The initializer of a block's weight `name`. A block passes one kernel
    initializer to several weights (K1 and K2 of a Hamiltonian block); given
    as a string, each weight gets a fresh Keras instance with its own seed,
    but an initializer instance returns the same values on every call, so
    it is re-seeded per weight (from its seed and the name: a seeded one
    stays deterministic)."""
    if isinstance(initializer, (str, dict)) or initializer is None:
        return initializer
    return _reseeded(keras.initializers.get(initializer), list(name.encode()))


@keras.saving.register_keras_serializable(package="zoo")
class StackedInitializer(keras.initializers.Initializer):
    """Initialises a (depth, *shape) weight slice by slice with `initializer`.

    Fan-in/fan-out based initialisers (Glorot, He) must see the shape of one
    block's kernel, not the stack, to give each block the variance it would
    have as a standalone layer. Each block gets its own draw, as a standalone
    layer would: a Keras 3 initializer seeded with an integer or unseeded
    returns the same values on every call, so a random initializer is
    re-seeded per slice (from its own seed, so a seeded one stays
    deterministic). Constant initialisers give every block the same values.
    """

    def __init__(self, initializer):
        self.initializer = keras.initializers.get(initializer)

    def slice_initializer(self, j):
        """The initializer of block j."""
        return _reseeded(self.initializer, [j])

    def __call__(self, shape, dtype=None):
        return keras.ops.stack(
            [self.slice_initializer(j)(tuple(shape[1:]), dtype=dtype) for j in range(shape[0])]
        )

    def get_config(self):
        return {"initializer": keras.initializers.serialize(self.initializer)}

    @classmethod
    def from_config(cls, config):
        return cls(keras.initializers.deserialize(config["initializer"]))
