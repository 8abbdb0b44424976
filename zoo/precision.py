"""Keras' dtype policy for a block of code.

Keras keeps one global dtype policy, which layers read when they are built.
Code that needs a precision for a while (float32 for evaluation and export,
mixed_bfloat16 for training) sets it here, and the caller's policy comes back
afterwards, also when the block raises.
"""

import contextlib


@contextlib.contextmanager
def policy(name):
    """Sets Keras' global dtype policy to `name` ("float32",
    "mixed_bfloat16", ...) inside the block and restores the previous one."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
