"""training.recalibrate_batch_norm: the moving statistics become the average
batch statistics, for Keras batch norms and those inside the zoo's blocks,
with the reversible engine too, and nothing else changes."""

import keras
import numpy as np
import pytest

from zoo import registry, training
from zoo.layers import ops


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3)).astype("float32")


def _moving(model):
    return {v.path: v.numpy().copy() for v in model.non_trainable_variables
            if "moving" in v.path}


@pytest.mark.parametrize("name,reversible", [("resnet-32", False), ("revnet-38", True),
                                             ("hamiltonian-74", True)])
def test_one_batch_makes_inference_equal_training_mode(name, reversible):
    # With a single batch the moving statistics become that batch's
    # statistics, so inference on the batch reproduces training mode exactly:
    # this fails if any batch norm (Keras or inside a block) is left out.
    model = registry.build(f"{name}-cifar10", reversible=reversible)
    images = _images(16)
    before = _moving(model)
    assert before, "the model should have moving statistics"
    # A stale, very wrong state: inference and training mode differ a lot.
    assert np.abs(model(images, training=False) - model(images, training=True)).max() > 1e-3

    assert training.recalibrate_batch_norm(model, images, batch_size=16) == 1

    after = _moving(model)
    assert sorted(after) == sorted(before)
    assert any(not np.allclose(after[k], before[k]) for k in after)
    np.testing.assert_allclose(model(images, training=False), model(images, training=True),
                               atol=2e-5)


def test_statistics_are_the_average_over_batches():
    inputs = keras.Input((32, 32, 3))
    norm = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, norm(inputs))
    images = _images(40, seed=3)
    # 40 images at batch 16: two full batches; the partial third is dropped.
    assert training.recalibrate_batch_norm(model, images, batch_size=16) == 2
    batches = images[:32].reshape(2, 16, 32, 32, 3)
    np.testing.assert_allclose(norm.moving_mean.numpy(),
                               batches.mean(axis=(1, 2, 3)).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.moving_variance.numpy(),
                               batches.var(axis=(1, 2, 3)).mean(axis=0), rtol=1e-4)


def test_weights_and_momenta_are_left_alone():
    model = registry.build("resnet-32-cifar10")
    weights = [w.numpy().copy() for w in model.trainable_weights]
    training.recalibrate_batch_norm(model, _images(8), batch_size=4)
    for before, w in zip(weights, model.trainable_weights):
        np.testing.assert_array_equal(before, w.numpy())
    momenta = {layer.momentum for layer in model._flatten_layers()
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.99}
    assert ops.moving_statistics_momentum() == ops.BN_MOMENTUM


def test_momentum_override_nests_and_checks_its_value():
    with ops.override_moving_statistics_momentum(0.5):
        with ops.override_moving_statistics_momentum(0.0):
            assert ops.moving_statistics_momentum() == 0.0
        assert ops.moving_statistics_momentum() == 0.5
    assert ops.moving_statistics_momentum() == ops.BN_MOMENTUM
    with pytest.raises(ValueError, match="momentum"):
        with ops.override_moving_statistics_momentum(1.5):
            pass


@pytest.mark.parametrize("images,batch_size", [(np.zeros((32, 32, 3)), 8),
                                               (np.zeros((0, 32, 32, 3)), 8),
                                               (np.zeros((4, 32, 32, 3)), 0)])
def test_bad_input(images, batch_size):
    model = registry.build("resnet-32-cifar10")
    with pytest.raises(ValueError):
        training.recalibrate_batch_norm(model, images, batch_size=batch_size)
