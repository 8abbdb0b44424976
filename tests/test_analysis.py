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
