"""The reversible engine: gradients equal autodiff, batch-norm statistics are
updated once, and the engine works under tf.function, Keras fit, mixed
precision and MirroredStrategy."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import copy_weights, max_relative_error, randomize
from zoo.layers import HamiltonianBlock, LeapfrogBlock, MidpointBlock, ReversibleUnit, RevNetBlock

BLOCKS = {
    "hamiltonian": (HamiltonianBlock(h=0.2), 8),
    "midpoint": (MidpointBlock(h=0.2), 4),
    "leapfrog": (LeapfrogBlock(h=0.5), 4),
    "revnet": (RevNetBlock(), 8),
}


def _unit_pair(block, channels, depth=5, dtype=None):
    """Two units with identical weights: plain autodiff and reversible."""
    shape = (4, 6, 6, channels)
    plain = ReversibleUnit(block, depth, reversible=False, dtype=dtype)
    rev = ReversibleUnit(block, depth, reversible=True, dtype=dtype)
    plain.build(shape)
    rev.build(shape)
    randomize(plain.weights, scale=0.2)
    copy_weights(plain, rev)
    return plain, rev, shape


def _gradients(unit, x, r, graph):
    def compute(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = unit(x, training=True)
            loss = tf.reduce_sum(tf.sin(y) * r)
        return y, tape.gradient(loss, [x] + unit.trainable_weights)

    if graph:
        compute = tf.function(compute)
    return compute(x)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("dtype,bound", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("kind", sorted(BLOCKS))
def test_reversible_gradients_equal_autodiff(kind, dtype, bound, graph):
    block, channels = BLOCKS[kind]
    plain, rev, shape = _unit_pair(block, channels, dtype=dtype)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal(shape), dtype)
    r = tf.constant(rng.standard_normal(shape), dtype)
    y_plain, g_plain = _gradients(plain, x, r, graph)
    y_rev, g_rev = _gradients(rev, x, r, graph)
    np.testing.assert_allclose(y_rev, y_plain, rtol=0, atol=0)
    names = ["input"] + [v.name for v in plain.trainable_weights]
    assert len(g_rev) == len(g_plain) == len(names)
    for name, a, b in zip(names, g_plain, g_rev):
        assert b is not None, name
        assert b.dtype == a.dtype
        err = max_relative_error(a, b)
        assert err <= bound, f"{kind} {dtype} {name}: relative error {err:.2e}"


def test_model_gradients_equal_autodiff_through_transitions():
    import zoo

    plain = zoo.models.reversible_ode_network(
        HamiltonianBlock(), 2, (8, 16, 24), "small", reversible=False, classes=3,
        input_shape=(16, 16, 3))
    rev = zoo.models.reversible_ode_network(
        HamiltonianBlock(), 2, (8, 16, 24), "small", reversible=True, classes=3,
        input_shape=(16, 16, 3))
    randomize(plain.weights, scale=0.1)
    copy_weights(plain, rev)
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)), tf.float32)
    grads = []
    for model in (plain, rev):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.math.log(model(x, training=True)[:, 0]))
        grads.append(tape.gradient(loss, model.trainable_weights))
    for v, a, b in zip(plain.trainable_weights, *grads):
        assert max_relative_error(a, b) <= 1e-5, v.path


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_batch_norm_statistics_are_updated_once(graph):
    plain, rev, shape = _unit_pair(RevNetBlock(), 8)
    x = tf.constant(np.random.default_rng(2).standard_normal(shape), tf.float32)

    def step(unit):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(unit(x, training=True) ** 2)
        return tape.gradient(loss, unit.trainable_weights)

    def moving(unit):
        return {v.name: v.numpy() for v in unit.non_trainable_weights}

    before = moving(rev)
    for unit in (plain, rev):
        (tf.function(step) if graph else step)(unit)
    after_plain, after_rev = moving(plain), moving(rev)
    assert after_rev.keys() == after_plain.keys() and after_rev
    for name in after_rev:
        assert not np.allclose(after_rev[name], before[name]), name
        np.testing.assert_allclose(after_rev[name], after_plain[name], rtol=1e-5, atol=1e-6)


# Documented float32 bounds on max|x − inverse(forward(x))| / max|x| for a
# freshly initialised unit (h = 0.1). Measured: depth 6 ≤ 3.6e-7, depth 100
# ≤ 2.4e-5 (Leapfrog; Hamiltonian 1.2e-6, MidPoint 1.8e-6).
RECONSTRUCTION_BOUNDS_FLOAT32 = {6: 1e-6, 100: 1e-4}


@pytest.mark.parametrize("depth", sorted(RECONSTRUCTION_BOUNDS_FLOAT32))
@pytest.mark.parametrize("block,channels", [
    (HamiltonianBlock(h=0.1), 16), (MidpointBlock(h=0.1), 8), (LeapfrogBlock(h=0.1), 8)],
    ids=["hamiltonian", "midpoint", "leapfrog"])
def test_reconstruction_error_float32_by_depth(block, channels, depth):
    unit = ReversibleUnit(block, depth)
    x = tf.constant(np.random.default_rng(3).standard_normal((2, 8, 8, channels)), tf.float32)
    unit.build(x.shape)
    state = unit.block.unit_entry(x)
    back = unit.inverse(unit.forward_state(state))
    err = max_relative_error(tf.concat(state, -1), tf.concat(back, -1))
    assert err < RECONSTRUCTION_BOUNDS_FLOAT32[depth], (depth, err)


def test_mixed_bfloat16_gradients_are_float32_and_close_to_autodiff():
    keras.config.set_dtype_policy("mixed_bfloat16")
    plain, rev, shape = _unit_pair(HamiltonianBlock(h=0.2), 8)
    assert rev.compute_dtype == "bfloat16" and rev.variable_dtype == "float32"
    rng = np.random.default_rng(4)
    x = tf.constant(rng.standard_normal(shape), tf.bfloat16)
    r = tf.constant(rng.standard_normal(shape), tf.bfloat16)
    for graph in (False, True):
        _, g_plain = _gradients(plain, x, r, graph)
        _, g_rev = _gradients(rev, x, r, graph)
        for a, b in zip(g_plain[1:], g_rev[1:]):
            assert b.dtype == tf.float32
            # Both are bfloat16 computations; they differ only by rounding.
            assert max_relative_error(a, b) < 5e-2


def _tiny_model(reversible, classes=4):
    import zoo

    return zoo.models.reversible_ode_network(
        HamiltonianBlock(), 2, (8, 16, 16), "tiny", reversible=reversible, classes=classes, input_shape=(16, 16, 3),
        weight_decay=1e-4, smoothness_decay=1e-4)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_keras_fit_trains_a_reversible_model(policy):
    keras.config.set_dtype_policy(policy)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (64, 16, 16, 3)).astype("uint8")
    y = rng.integers(0, 4, (64,))
    model = _tiny_model(True)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from zoo.layers import HamiltonianBlock, ReversibleUnit

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 8))
        x = ReversibleUnit(HamiltonianBlock(h=0.2), 4, reversible=True)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8, 8, 8)).astype("float32")
    y = rng.integers(0, 3, (16,))
    results = []
    for strategy in (tf.distribute.get_strategy(),
                     tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
        with strategy.scope():
            model = build()
            model.compile(keras.optimizers.SGD(0.1),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        results.append([w.numpy() for w in model.weights])
    print("replicas", strategy.num_replicas_in_sync)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(*results))
    print("max weight difference", err)
    assert strategy.num_replicas_in_sync == 2
    assert err < 1e-5, err
    """
)


def test_mirrored_strategy_matches_single_device(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "replicas 2" in proc.stdout


def test_a_frozen_reversible_unit_still_backpropagates_to_its_input():
    # trainable=False leaves the variables trainable at the TensorFlow level;
    # the unit must read them outside its custom gradient (a fine-tuning
    # phase with a frozen backbone once failed to trace).
    from zoo import layers

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 4, 4, 8)), tf.float32)
    frozen = layers.ReversibleUnit(layers.HamiltonianBlock(), depth=3)
    frozen.build(x.shape)
    frozen.trainable = False
    plain = layers.ReversibleUnit(layers.HamiltonianBlock(), depth=3, reversible=False)
    plain.build(x.shape)
    for a, b in zip(plain.weights, frozen.weights):
        a.assign(b)

    def input_gradient(unit):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(unit(x, training=True)))
        return tape.gradient(loss, x)

    assert frozen.trainable_weights == []
    np.testing.assert_allclose(tf.function(input_gradient)(frozen).numpy(),
                               input_gradient(plain).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_unrolled_forward_equals_the_loop(name):
    # The unrolled forward (autodiff training, graph tools such as the FLOP count) must compute
    # exactly what the tf.while_loop computes, batch-norm statistics included.
    from zoo import engine

    block, channels = BLOCKS[name]
    plain, _, shape = _unit_pair(block, channels, dtype="float64")
    x = tf.constant(np.random.default_rng(0).standard_normal(shape))
    state = plain.block.unit_entry(x)
    trainable, constants = plain._split_weights()
    weights = {**trainable, **constants}
    looped, looped_stats = engine.run_forward(plain.block, state, weights, training=True)
    with engine.unrolled():
        unrolled, unrolled_stats = engine.run_forward(plain.block, state, weights, training=True)
    for a, b in zip(looped, unrolled):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert sorted(looped_stats) == sorted(unrolled_stats)
    for name in looped_stats:
        for a, b in zip(looped_stats[name], unrolled_stats[name]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def _loop_ops(unit, shape):
    """The while-loop ops in the graph of a traced training step of `unit`."""
    x = tf.zeros(shape, unit.variable_dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(unit(x, training=True))
        return tape.gradient(loss, [x] + unit.trainable_weights)

    graph = step.get_concrete_function(x).graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return [n.name for n in nodes if n.op in ("While", "StatelessWhile")]


def test_autodiff_units_run_unrolled_up_to_the_depth_limit():
    # Autodiff units of up to MAX_UNROLLED_DEPTH blocks train without a loop
    # (faster on CPUs); deeper ones and the reversible engine keep their loops.
    from zoo import engine

    block, channels = BLOCKS["hamiltonian"]
    shape = (2, 4, 4, channels)
    for depth, loops in ((5, False), (engine.MAX_UNROLLED_DEPTH, False),
                         (engine.MAX_UNROLLED_DEPTH + 1, True)):
        unit = ReversibleUnit(block, depth, reversible=False)
        unit.build(shape)
        assert bool(_loop_ops(unit, shape)) == loops, depth
    reversible = ReversibleUnit(block, 5, reversible=True)
    reversible.build(shape)
    assert _loop_ops(reversible, shape)
