"""Blocks: the paper's equations, exact inverses, serialisation, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import randomize
from zoo.layers import (
    HamiltonianBlock,
    LeapfrogBlock,
    MidpointBlock,
    PerImageStandardization,
    PoolAndPad,
    ResidualBlock,
    RevNetBlock,
    RevNetDownsampleBlock,
)
from zoo.layers import ops


def _conv(x, k):
    return tf.nn.conv2d(x, k, 1, "SAME")


def _conv_t(x, k):
    # An implementation of K^T independent of zoo.layers.ops.conv_transpose.
    shape = tf.concat([tf.shape(x)[:-1], [k.shape[2]]], 0)
    return tf.nn.conv2d_transpose(x, k, shape, 1, "SAME")


def _random(shape, seed=0, dtype="float64"):
    return tf.constant(np.random.default_rng(seed).standard_normal(shape), dtype)


def _built(block, input_shape, dtype="float64"):
    block = block.__class__.from_config({**block.get_config(), "dtype": dtype})
    block.build(input_shape)
    randomize(block.weights)
    return block


def test_conv_transpose_is_the_adjoint_of_conv():
    k = _random((3, 3, 4, 6), 1)
    x = _random((2, 7, 5, 4), 2)
    y = _random((2, 7, 5, 6), 3)
    lhs = tf.reduce_sum(ops.conv(x, k) * y)
    rhs = tf.reduce_sum(x * ops.conv_transpose(y, k))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    np.testing.assert_allclose(ops.conv_transpose(y, k), _conv_t(y, k), atol=1e-12)


def test_hamiltonian_block_is_equation_10():
    block = _built(HamiltonianBlock(h=0.3), (2, 6, 6, 8))
    w = {n: v.numpy() for n, v in block._block_variables.items()}
    y0, z0 = _random((2, 6, 6, 4), 1), _random((2, 6, 6, 4), 2)
    h = 0.3
    y1 = y0 + h * _conv_t(tf.nn.relu(_conv(z0, w["k1"]) + w["b1"]), w["k1"])
    z1 = z0 - h * _conv_t(tf.nn.relu(_conv(y1, w["k2"]) + w["b2"]), w["k2"])
    out = block(tf.concat([y0, z0], -1))
    np.testing.assert_allclose(out, tf.concat([y1, z1], -1), atol=1e-12)


def test_midpoint_block_is_equation_15_with_euler_start():
    h = 0.2
    for first, coef in ((False, 2 * h), (True, h)):
        block = _built(MidpointBlock(h=h, first_step=first), [(2, 5, 5, 4)] * 2)
        w = {n: v.numpy() for n, v in block._block_variables.items()}
        prev, cur = _random((2, 5, 5, 4), 1), _random((2, 5, 5, 4), 2)
        if first:
            prev = cur  # the unit starts from (Y_0, Y_0)
        a = _conv(cur, w["k"]) - _conv_t(cur, w["k"])
        expected = prev + coef * tf.nn.relu(a + w["b"])
        out_cur, out_next = block([prev, cur])
        np.testing.assert_allclose(out_cur, cur, atol=0)
        np.testing.assert_allclose(out_next, expected, atol=1e-12)


def test_leapfrog_block_is_equation_17_with_verlet_start():
    h = 0.2
    for first, coef in ((False, h * h), (True, h * h / 2)):
        block = _built(LeapfrogBlock(h=h, first_step=first), [(2, 5, 5, 4)] * 2)
        w = {n: v.numpy() for n, v in block._block_variables.items()}
        prev, cur = _random((2, 5, 5, 4), 1), _random((2, 5, 5, 4), 2)
        if first:
            prev = cur
        expected = 2 * cur - prev - coef * _conv_t(tf.nn.relu(_conv(cur, w["k"]) + w["b"]), w["k"])
        _, out_next = block([prev, cur])
        np.testing.assert_allclose(out_next, expected, atol=1e-12)
    # With Y_{-1} = Y_1 (zero initial velocity) the start is Y_0 - h²/2 K^T σ(K Y_0 + b).
    y0 = _random((2, 5, 5, 4), 3)
    _, y1 = block([y0, y0])
    np.testing.assert_allclose(
        y1, y0 - (h * h / 2) * _conv_t(tf.nn.relu(_conv(y0, w["k"]) + w["b"]), w["k"]), atol=1e-12
    )


def test_revnet_block_is_additive_coupling():
    block = _built(RevNetBlock(), (4, 6, 6, 8))
    x = _random((4, 6, 6, 8), 1)
    x1, x2 = tf.split(x, 2, -1)
    w = block.own_weights()
    stats = {}
    f = block._f(x2, w, 0, False, stats)
    y1 = x1 + f
    y2 = x2 + block._g(y1, w, 0, False, stats)
    np.testing.assert_allclose(block(x), tf.concat([y1, y2], -1), atol=1e-12)


INVERTIBLE = [
    (HamiltonianBlock(h=0.5), "split"),
    (MidpointBlock(h=0.5), "pair"),
    (MidpointBlock(h=0.5, first_step=True), "pair"),
    (LeapfrogBlock(h=0.5), "pair"),
    (RevNetBlock(), "split"),
]


@pytest.mark.parametrize("block,kind", INVERTIBLE, ids=lambda p: getattr(p, "name", p))
@pytest.mark.parametrize("training", [False, True])
def test_inverse_of_forward_is_identity_float64(block, kind, training):
    if kind == "split":
        state = tuple(tf.split(_random((4, 6, 6, 8), 1), 2, -1))
        block = _built(block, (4, 6, 6, 8))
    else:
        state = (_random((4, 6, 6, 4), 1), _random((4, 6, 6, 4), 2))
        block = _built(block, [(4, 6, 6, 4)] * 2)
    out = block.forward(state, training=training)
    back = block.inverse(out, training=training)
    for a, b in zip(state, back):
        np.testing.assert_allclose(b, a, atol=1e-12)
    # And the inverse is not a trivial copy: the block changed the state.
    assert max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(state, out)) > 1e-3


@pytest.mark.parametrize(
    "block",
    [HamiltonianBlock(h=0.05, kernel_size=5), MidpointBlock(h=0.2, first_step=True),
     LeapfrogBlock(h=0.3), RevNetBlock(kernel_size=3), ResidualBlock(16, strides=2),
     RevNetDownsampleBlock(64)],
    ids=lambda b: type(b).__name__,
)
def test_block_config_round_trip(block):
    config = keras.saving.serialize_keras_object(block)
    clone = keras.saving.deserialize_keras_object(config)
    assert type(clone) is type(block)
    assert clone.get_config() == block.get_config()


def test_blocks_reject_bad_input():
    with pytest.raises(ValueError, match="halves"):
        HamiltonianBlock()(tf.zeros((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="halves"):
        RevNetBlock()(tf.zeros((1, 4, 4, 5)))
    with pytest.raises(ValueError, match="pair"):
        MidpointBlock()(tf.zeros((1, 4, 4, 4)))


def test_residual_block_option_a_shortcut():
    block = _built(ResidualBlock(8, strides=2), (2, 6, 6, 4))
    x = _random((2, 6, 6, 4), 1)
    out = block(x)
    assert out.shape == (2, 3, 3, 8)
    # Zero the residual branch (BN gamma = beta = 0): only the shortcut remains.
    for name in ("bn2_gamma", "bn2_beta"):
        block._block_variables[name].assign(tf.zeros_like(block._block_variables[name]))
    expected = tf.nn.relu(tf.pad(x[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [0, 4]]))
    np.testing.assert_allclose(block(x), expected, atol=1e-12)


def test_pool_and_pad_keeps_halves_in_their_roles():
    x = _random((1, 4, 4, 4), 1)
    out = PoolAndPad(8, groups=2, dtype="float64")(x)
    pooled = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    np.testing.assert_allclose(out[..., 0:2], pooled[..., 0:2], atol=1e-12)
    np.testing.assert_allclose(out[..., 4:6], pooled[..., 2:4], atol=1e-12)
    assert float(tf.reduce_max(tf.abs(out[..., 2:4]))) == 0.0
    assert float(tf.reduce_max(tf.abs(out[..., 6:8]))) == 0.0


def test_per_image_standardization_is_scale_free_and_takes_uint8():
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    layer = PerImageStandardization()
    a = layer(images)
    b = layer(images.astype("float32") / 255.0)
    np.testing.assert_allclose(a, tf.image.per_image_standardization(images.astype("float32")),
                               atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert a.dtype == tf.float32


@pytest.mark.parametrize("block,shapes", [
    (HamiltonianBlock(), [(2, 6, 6, 4), (2, 6, 6, 4)]),
    (RevNetBlock(), [(2, 6, 6, 4), (2, 6, 6, 4)]),
    (LeapfrogBlock(), [(2, 6, 6, 3), (2, 6, 6, 3)])],
    ids=lambda p: type(p).__name__ if not isinstance(p, list) else "")
def test_forward_and_inverse_build_an_unbuilt_block(block, shapes):
    state = tuple(tf.random.normal(s) for s in shapes)
    back = block.inverse(block.forward(state))
    for a, b in zip(state, back):
        np.testing.assert_allclose(b, a, atol=1e-5)
    assert block.built and len(block.trainable_weights) > 0


# --------------------------------------------------------------------------
# Stacked weights start as independent blocks
# --------------------------------------------------------------------------
@pytest.mark.parametrize("block", [HamiltonianBlock(), ResidualBlock(16), RevNetBlock(),
                                   MidpointBlock()])
def test_every_block_of_a_unit_starts_from_its_own_kernels(block):
    # A Keras 3 initializer returns the same values on every call: stacked
    # slice by slice with one instance, every block of a unit once started
    # from the same kernel (a weight-tied network).
    from zoo.layers import StackedUnit

    unit = StackedUnit(block, depth=4)
    unit.build((None, 8, 8, 16))
    for name, kernel in unit.stacked_kernels.items():
        k = kernel.numpy().reshape(4, -1)
        ratios = np.linalg.norm(k[1:] - k[:-1], axis=1) / np.linalg.norm(k[:-1], axis=1)
        assert np.all((ratios > 1.2) & (ratios < 1.6)), (name, ratios)  # independent: ~sqrt(2)


def test_stacked_slices_have_a_standalone_kernels_variance_and_keep_their_seed():
    from zoo.initializers import StackedInitializer

    seeded = keras.initializers.HeNormal(seed=3)
    stack = np.asarray(StackedInitializer(seeded)((64, 3, 3, 16, 16)))
    standalone = np.asarray(keras.initializers.HeNormal(seed=3)((3, 3, 16, 16)))
    np.testing.assert_allclose(stack.std(axis=(1, 2, 3, 4)).mean(), standalone.std(), rtol=0.05)
    again = StackedInitializer.from_config(StackedInitializer(seeded).get_config())
    np.testing.assert_array_equal(np.asarray(again((64, 3, 3, 16, 16))), stack)
    np.testing.assert_array_equal(np.asarray(StackedInitializer("zeros")((3, 2))), np.zeros((3, 2)))


def test_a_built_model_starts_with_untied_units():
    from zoo import registry
    from zoo.research import analysis

    drift = analysis.kernel_drift(registry.build("hamiltonian-74-cifar10"))
    assert len(drift) == 6 and all(np.all(r > 1.2) for r in drift.values()), drift


def test_weights_sharing_an_initializer_instance_start_apart():
    # K1 and K2 of a Hamiltonian block take the block's one kernel
    # initializer; an instance (not a name) once gave both the same values.
    from zoo.layers import StackedUnit

    seeded = keras.initializers.HeNormal(seed=1)
    block = HamiltonianBlock(kernel_initializer=seeded)
    block.build((None, 8, 8, 16))
    k1, k2 = block._block_variables["k1"].numpy(), block._block_variables["k2"].numpy()
    assert np.linalg.norm(k1 - k2) > np.linalg.norm(k1)
    again = HamiltonianBlock(kernel_initializer=keras.initializers.HeNormal(seed=1))
    again.build((None, 8, 8, 16))
    np.testing.assert_array_equal(again._block_variables["k1"].numpy(), k1)  # still seeded
    unit = StackedUnit(HamiltonianBlock(kernel_initializer=seeded), depth=3)
    unit.build((None, 8, 8, 16))
    kernels = unit.stacked_kernels
    assert not np.allclose(kernels["k1"].numpy(), kernels["k2"].numpy())
