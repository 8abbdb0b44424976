"""zoo.research.analysis: the paper's stability claims on small feature maps."""

import numpy as np
import pytest
import tensorflow as tf

from zoo import layers
from zoo.research import analysis


def _unit(block, depth=3, channels=8, dtype="float32", cls=layers.ReversibleUnit):
    unit = cls(block, depth=depth, dtype=dtype)
    unit.build((None, 4, 4, channels))
    return unit


@pytest.mark.parametrize("block", [layers.HamiltonianBlock, layers.MidpointBlock,
                                   layers.LeapfrogBlock])
def test_structured_right_hand_sides_have_imaginary_spectra(block):
    unit = _unit(block())
    values = analysis.jacobian_eigenvalues(unit.block, unit.block_weights(1), shape=(1, 3, 3, 8))
    assert np.max(np.abs(values)) > 0.1  # not trivially zero
    assert analysis.real_part_ratio(values) < 1e-6


def test_the_same_kernel_without_structure_is_not_imaginary():
    unit = _unit(layers.MidpointBlock())
    w = unit.block_weights(1)
    values = analysis.unconstrained_eigenvalues(w["k"], w["b"], shape=(1, 3, 3, 8))
    assert analysis.real_part_ratio(values) > 0.1


def test_vector_fields_are_what_the_steps_discretise():
    # (step(state) − state) / h → the vector field as h → 0: the spectrum is
    # computed for the system the blocks actually integrate.
    h = 1e-7
    rng = np.random.default_rng(1)
    ham = _unit(layers.HamiltonianBlock(h=h), dtype="float64")
    w = ham.block_weights(1)
    y, z = (tf.constant(rng.standard_normal((1, 3, 3, 4))) for _ in range(2))
    (y1, z1), _ = ham.block.forward_step((y, z), w, 1, False)
    fy, fz = ham.block.vector_field((y, z), w)
    np.testing.assert_allclose((y1 - y).numpy() / h, fy.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose((z1 - z).numpy() / h, fz.numpy(), rtol=1e-4, atol=1e-6)

    mid = _unit(layers.MidpointBlock(h=h), dtype="float64")
    w = mid.block_weights(1)
    y0, y1 = (tf.constant(rng.standard_normal((1, 3, 3, 8))) for _ in range(2))
    (_, y2), _ = mid.block.forward_step((y0, y1), w, 1, False)
    (f,) = mid.block.vector_field((y1,), w)
    np.testing.assert_allclose((y2 - y0).numpy() / (2 * h), f.numpy(), rtol=1e-4, atol=1e-6)

    assert analysis.real_part_ratio(np.array([1j, -1j, 0.5j])) == 0.0
    assert analysis.real_part_ratio(np.array([1.0, 1j])) == 1.0


def test_hamiltonian_units_keep_perturbations_bounded_and_inverse_is_exact():
    unit = _unit(layers.HamiltonianBlock(), depth=8)
    x = tf.constant(np.random.default_rng(0).standard_normal((2, 4, 4, 8)), tf.float32)
    forward = analysis.perturbation_growth(unit, x)
    backward = analysis.gradient_growth(unit, x)
    assert forward.shape == backward.shape == (8,)
    assert np.all(forward < 2) and np.all(backward < 2)
    unit64 = _unit(layers.HamiltonianBlock(), depth=8, dtype="float64")
    assert analysis.reconstruction_error(unit64, tf.cast(x, tf.float64)) < 1e-13
    assert analysis.reconstruction_error(unit, x) < 1e-5


def test_block_weights_index_is_checked():
    unit = _unit(layers.HamiltonianBlock(), depth=2)
    with pytest.raises(IndexError):
        unit.block_weights(2)


def _classifier(depth=4, h=0.1, dtype="float32"):
    """Batch norm, a Hamiltonian unit and a softmax head on 8x8x8 inputs."""
    import keras

    inputs = keras.Input((8, 8, 8), dtype=dtype)
    x = keras.layers.BatchNormalization(dtype=dtype)(inputs)
    x = layers.StackedUnit(layers.HamiltonianBlock(h=h), depth=depth, dtype=dtype)(x)
    x = keras.layers.GlobalAveragePooling2D(dtype=dtype)(x)
    outputs = keras.layers.Dense(3, activation="softmax", dtype=dtype)(x)
    return keras.Model(inputs, outputs)


def test_kernel_drift_is_the_relative_step_between_neighbouring_kernels():
    model = _classifier()
    (unit,) = analysis.stacked_units(model)
    rng = np.random.default_rng(0)
    for variable in unit.stacked_kernels.values():
        base = rng.standard_normal(variable.shape[1:])
        variable.assign(np.stack([base * (1 + 0.1 * j) for j in range(variable.shape[0])]))
    drift = analysis.kernel_drift(model)
    assert sorted(drift) == sorted(f"{unit.name}/{k}" for k in unit.stacked_kernels)
    for ratios in drift.values():
        np.testing.assert_allclose(ratios, [0.1 / (1 + 0.1 * j) for j in range(3)], rtol=1e-5)


def test_regularizer_gradients_have_their_closed_forms_and_leave_statistics_alone():
    model = _classifier(dtype="float64")
    (unit,) = analysis.stacked_units(model)
    rng = np.random.default_rng(1)
    for variable in unit.stacked_kernels.values():  # neighbours differ
        variable.assign(variable.numpy() + 0.1 * rng.standard_normal(variable.shape))
    images = rng.standard_normal((20, 8, 8, 8))
    labels = rng.integers(0, 3, 20)
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    norms = analysis.regularizer_gradient_norms(model, images, labels, weight_decay=3e-4,
                                                smoothness_decay=2e-4, batch_size=8)
    for v, old in zip(model.non_trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), old)
    kernels = [v.numpy() for v in unit.stacked_kernels.values()]
    # d/dK_j of (λ/2) Σ||K_j||² is λ K_j; of (α/h) Σ||K_{j+1} − K_j||² it is
    # (2α/h)(D_{j−1} − D_j), D_j = K_{j+1} − K_j, D_{−1} = D_{N−1} = 0.
    decay = np.sqrt(sum(np.sum((3e-4 * k) ** 2) for k in kernels))
    smooth = []
    for k in kernels:
        d = np.diff(k, axis=0)
        pad = np.zeros_like(k[:1])
        smooth.append(2 * 2e-4 / 0.1 * (np.concatenate([pad, d]) - np.concatenate([d, pad])))
    smooth = np.sqrt(sum(np.sum(g ** 2) for g in smooth))
    np.testing.assert_allclose(norms["weight_decay"], decay, rtol=1e-10)
    np.testing.assert_allclose(norms["smoothness"], smooth, rtol=1e-10)
    assert norms["data"] > 0 and smooth > 0.1 * decay
    assert analysis.regularizer_gradient_norms(model, images, labels, 0.0, 0.0)[
        "smoothness"] == 0.0


def test_regularizer_gradients_need_stacked_units():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="no stacked units"):
        analysis.regularizer_gradient_norms(model, np.zeros((2, 4)), np.zeros(2, int), 1e-4, 1e-4)


def test_the_drift_range_of_units_without_neighbours_is_none():
    from zoo.publish import entries

    assert analysis.kernel_drift(_classifier(depth=1)) == {}
    assert entries.kernel_drift_range(_classifier(depth=1)) is None
    drift = entries.kernel_drift_range(_classifier(depth=3))
    assert 1.2 < drift["min"] <= drift["max"] < 1.6  # independent at the start
