"""Shared test utilities."""

import numpy as np


def max_relative_error(a, b):
    """max |a − b| / max |a|, the error measure of the gradient tests."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a)), 1e-30)
    return float(np.max(np.abs(a - b)) / scale)


def randomize(variables, scale=0.1, seed=0):
    """Adds noise to trainable variables so that zero biases do not hide bugs."""
    rng = np.random.default_rng(seed)
    for v in variables:
        if v.trainable:
            v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(v.dtype))


def copy_weights(source, target):
    for s, t in zip(source.weights, target.weights):
        assert s.shape == t.shape, (s.path, t.path)
        t.assign(s)
