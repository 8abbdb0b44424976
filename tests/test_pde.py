"""PDE-CNNs of Ruthotto & Haber (2020) and weights on their own time grid."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.helpers import copy_weights, max_relative_error, randomize, smallest_of_each_family
from zoo.layers import (
    HamiltonianBlock,
    LeapfrogBlock,
    ParabolicBlock,
    ReversibleUnit,
    RevNetBlock,
    StackedUnit,
    TVNormalization,
)
from zoo.layers import ops
from zoo.layers.unit import linear_interpolation_matrix

# The PDE-CNNs of Ruthotto & Haber (2020), as registered.
PDE_MODELS = [n for n in zoo.list_models() if zoo.registry.get_entry(n).family == "pde"]


def _numpy_tv(x, eps=1e-4):
    return x / np.sqrt(np.sum(x**2, axis=-1, keepdims=True) + eps)


def test_tv_normalization_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4, 6))
    x[0, 0, 0] = 0.0  # a zero pixel stays finite thanks to ε
    np.testing.assert_allclose(ops.tv_norm(tf.constant(x)), _numpy_tv(x), rtol=1e-12)
    layer = TVNormalization(dtype="float64")
    layer.build(x.shape)
    scale, shift = rng.standard_normal(6), rng.standard_normal(6)
    layer.scale.assign(scale)
    layer.shift.assign(shift)
    np.testing.assert_allclose(layer(x), _numpy_tv(x) * scale + shift, rtol=1e-12)
    plain = TVNormalization(affine=False, epsilon=1e-2, dtype="float64")
    np.testing.assert_allclose(plain(x), _numpy_tv(x, 1e-2), rtol=1e-12)
    assert not plain.weights


def test_parabolic_block_is_forward_euler_of_f_sym():
    block = ParabolicBlock(h=0.3, dtype="float64")
    x = tf.constant(np.random.default_rng(1).standard_normal((2, 6, 6, 4)))
    block.build(x.shape)
    randomize(block.weights)
    w = {n: v.numpy() for n, v in block._block_variables.items()}
    a = tf.nn.conv2d(x, w["k"], 1, "SAME") + w["b"]
    a = _numpy_tv(a.numpy()) * w["n_scale"] + w["n_shift"]
    shape = tf.shape(x)
    kt = tf.nn.conv2d_transpose(tf.nn.relu(a), w["k"], shape, 1, "SAME")
    np.testing.assert_allclose(block(x), x - 0.3 * kt, atol=1e-12)


def test_parabolic_block_is_not_reversible():
    with pytest.raises(TypeError, match="not invertible|invertible block"):
        ReversibleUnit(ParabolicBlock(), 3)
    StackedUnit(ParabolicBlock(), 3)  # ordinary backprop


TV_BLOCKS = {
    "hyperbolic-hamiltonian": (HamiltonianBlock(h=0.2, normalization="tv"), 8),
    "second-order": (LeapfrogBlock(h=0.5, normalization="tv"), 4),
}


@pytest.mark.parametrize("control_points", [None, 2])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("dtype,bound", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("kind", sorted(TV_BLOCKS))
def test_tv_blocks_reversible_gradients_equal_autodiff(kind, dtype, bound, graph, control_points):
    block, channels = TV_BLOCKS[kind]
    shape = (3, 5, 5, channels)
    units = [ReversibleUnit(block, 4, reversible=r, control_points=control_points, dtype=dtype)
             for r in (False, True)]
    for unit in units:
        unit.build(shape)
    randomize(units[0].weights, scale=0.2)
    copy_weights(*units)
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal(shape), dtype)
    r = tf.constant(rng.standard_normal(shape), dtype)

    def grads(unit, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(unit(x, training=True)) * r)
        return tape.gradient(loss, [x] + unit.trainable_weights)

    results = [(tf.function(grads) if graph else grads)(u, x) for u in units]
    for a, b in zip(*results):
        assert max_relative_error(a, b) <= bound


@pytest.mark.parametrize("block,shape", [
    (HamiltonianBlock(h=0.5, normalization="tv"), (3, 5, 5, 8)),
    (LeapfrogBlock(h=0.5, normalization="tv"), (3, 5, 5, 4))], ids=["hamiltonian", "leapfrog"])
def test_tv_blocks_are_exactly_invertible(block, shape):
    unit = ReversibleUnit(block, 6, dtype="float64")
    x = tf.constant(np.random.default_rng(3).standard_normal(shape))
    unit.build(x.shape)
    randomize(unit.weights, scale=0.2)
    state = unit.block.unit_entry(x)
    back = unit.inverse(unit.forward_state(state))
    assert max_relative_error(tf.concat(state, -1), tf.concat(back, -1)) < 1e-12


def test_interpolation_matrix():
    a = linear_interpolation_matrix(5, 3)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)
    # Steps 0, 2, 4 sit on the control points and take their weights exactly.
    np.testing.assert_array_equal(a[[0, 2, 4]], np.eye(3))
    np.testing.assert_allclose(a[1], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(linear_interpolation_matrix(4, 4), np.eye(4))
    np.testing.assert_array_equal(linear_interpolation_matrix(3, 1), np.ones((3, 1)))
    for bad in (0, 6):
        with pytest.raises(ValueError, match="control_points"):
            linear_interpolation_matrix(5, bad)


def test_unit_with_control_points_equals_unit_with_interpolated_weights():
    block = LeapfrogBlock(h=0.3, normalization="tv")
    coarse = ReversibleUnit(block, 5, control_points=3, dtype="float64")
    fine = ReversibleUnit(block, 5, dtype="float64")
    x = tf.constant(np.random.default_rng(4).standard_normal((2, 5, 5, 4)))
    coarse.build(x.shape)
    fine.build(x.shape)
    randomize(coarse.weights, scale=0.2)
    assert coarse.weights[0].shape[0] == 3 and fine.weights[0].shape[0] == 5
    a = linear_interpolation_matrix(5, 3)
    for c, f in zip(coarse.weights, fine.weights):
        f.assign(np.tensordot(a, c.numpy(), axes=1))
    np.testing.assert_allclose(coarse(x), fine(x), atol=1e-12)
    # At the control points the interpolated kernels are the stored ones.
    kernels = coarse._split_weights()[0]["k"].numpy()
    np.testing.assert_array_equal(kernels[[0, 2, 4]], coarse._stacked["k"].numpy())


def test_control_points_reject_batch_norm_blocks():
    with pytest.raises(ValueError, match="moving statistics"):
        ReversibleUnit(RevNetBlock(), 4, control_points=2).build((1, 4, 4, 8))


def test_smoothness_decay_uses_the_control_point_spacing():
    unit = ReversibleUnit(HamiltonianBlock(h=0.1), 7, control_points=3, smoothness_decay=1.0)
    unit.build((1, 4, 4, 4))
    k = unit._stacked["k1"].numpy()
    spacing = 0.1 * 6 / 2
    expected = spacing * np.sum(((k[1:] - k[:-1]) / spacing) ** 2)
    np.testing.assert_allclose(float(unit.losses[0]), expected, rtol=1e-5)


@pytest.mark.parametrize("name", PDE_MODELS)
def test_pde_models_at_stl10_size_have_the_same_parameters(name):
    # The counts against Table 1 are asserted in test_models.py.
    cifar, stl = zoo.build(name + "-cifar10"), zoo.build(name + "-stl10")
    assert stl.input_shape == (None, 96, 96, 3)
    assert stl.count_params() == cifar.count_params()
    assert stl(np.zeros((1, 96, 96, 3), "uint8")).shape == (1, 10)


def test_fewer_control_points_fewer_parameters():
    counts = [zoo.build("second-order-cifar10", control_points=m).count_params() for m in (3, 2, 1)]
    assert counts[0] == 503_194 and counts[0] > counts[1] > counts[2]


@pytest.mark.parametrize("name", PDE_MODELS)
def test_pde_models_round_trip(name, tmp_path):
    model = zoo.build(name + "-cifar10", control_points=2, smoothness_decay=1e-4)
    randomize(model.weights, scale=0.05)
    x = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


@pytest.mark.parametrize("name", sorted(set(PDE_MODELS) | set(smallest_of_each_family())))
def test_models_train_under_mixed_bfloat16(name):
    """Every block family, including the non-invertible ones in stacked units."""
    extra = {"control_points": 2} if zoo.registry.get_entry(name).family == "pde" else {}
    model = zoo.build(name, classes=3, input_shape=(16, 16, 3), dtype="mixed_bfloat16", **extra)
    assert keras.config.dtype_policy().name == "float32"
    units = [layer for layer in model.layers if isinstance(layer, StackedUnit)]
    assert units and all(u.dtype_policy.name == "mixed_bfloat16" for u in units)
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(6)
    x = rng.integers(0, 256, (8, 16, 16, 3)).astype("uint8")
    y = rng.integers(0, 3, (8,))
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    assert np.all(np.isfinite(losses))
    assert all(v.dtype == "float32" for v in model.trainable_weights)
