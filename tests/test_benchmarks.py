"""Benchmarks: run with `python -m pytest -m benchmark -s`. They print figures
and are not part of the default suite."""

import time

import keras
import numpy as np
import pytest

import zoo
from zoo import data


def _images_per_second(iterable, batch_size, warmup=2):
    it = iter(iterable)
    for _ in range(warmup):
        next(it)
    start, count = time.perf_counter(), 0
    for batch in it:
        count += batch_size
    return count / (time.perf_counter() - start)


@pytest.mark.benchmark
@pytest.mark.parametrize("policy,reversible", [("mixed_bfloat16", False), ("mixed_bfloat16", True),
                                               ("float32", True)])
def test_input_pipeline_is_not_the_bottleneck(policy, reversible):
    """Augmented CIFAR-sized batches per second vs Hamiltonian-74 training
    steps per second at batch 128 (the cpu recipe)."""
    rng = np.random.default_rng(0)
    split = data.Split(rng.integers(0, 256, (20_000, 32, 32, 3)).astype("uint8"),
                       rng.integers(0, 10, 20_000), [str(i) for i in range(10)],
                       "synthetic", "train", "memory")
    batch = 128
    pipeline = _images_per_second(data.train_dataset(split, batch, seed=0, epoch=0), batch)

    keras.config.set_dtype_policy(policy)
    model = zoo.build("hamiltonian-74-cifar10", reversible=reversible)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    x = split.images[:batch]
    y = split.labels[:batch]
    for _ in range(2):
        model.train_on_batch(x, y)
    steps = 6
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    model_rate = steps * batch / (time.perf_counter() - start)
    print(f"\n{policy} reversible={reversible}: input pipeline {pipeline:.0f} img/s, "
          f"training step {model_rate:.0f} img/s, ratio {pipeline / model_rate:.1f}x")
    assert pipeline > 5 * model_rate
