"""What must not grow with depth: activation memory per sample (reversible) and
the traced graph (always)."""

import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.conftest import REPO_ROOT
from zoo.research.analysis import ALLOCATOR_STATS_ENV


MEMORY_SCRIPT = """
import json, zoo
from zoo.research.analysis import activation_bytes_per_sample
slopes = {}
for name, reversible in [("hamiltonian-74", True), ("hamiltonian-1202", True),
                         ("hamiltonian-74", False), ("hamiltonian-218", False)]:
    key = f"{name} {'reversible' if reversible else 'autodiff'}"
    slopes[key] = activation_bytes_per_sample(lambda: zoo.build(name, reversible=reversible))
print(json.dumps(slopes))
"""


def test_activation_memory_does_not_grow_with_depth():
    # A fresh process: the allocator's peak depends on what else ran before.
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True,
                          cwd=root, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2",
                                   **ALLOCATOR_STATS_ENV))
    assert proc.returncode == 0, proc.stderr[-3000:]
    slopes = json.loads(proc.stdout.strip().splitlines()[-1])
    print("activation bytes per sample:", slopes)
    rev74, rev1202 = slopes["hamiltonian-74 reversible"], slopes["hamiltonian-1202 reversible"]
    plain74, plain218 = slopes["hamiltonian-74 autodiff"], slopes["hamiltonian-218 autodiff"]
    assert rev74 > 0
    assert rev1202 <= 1.3 * rev74
    # Autodiff stores every block's activations: 3× the blocks, >2× the memory.
    assert plain218 >= 2.0 * plain74
    assert plain74 > rev74


def _traced_train_step(model):
    optimizer = keras.optimizers.SGD(0.1)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    optimizer.build(model.trainable_weights)
    start = time.perf_counter()
    concrete = step.get_concrete_function(
        tf.TensorSpec((None, 32, 32, 3), tf.float32), tf.TensorSpec((None,), tf.int64))
    seconds = time.perf_counter() - start
    graph = concrete.graph.as_graph_def()
    nodes = len(graph.node) + sum(len(f.node_def) for f in graph.library.function)
    return nodes, seconds


def test_traced_graph_does_not_grow_with_depth():
    results = {}
    for name in ("hamiltonian-74", "hamiltonian-1202", "revnet-38", "revnet-110"):
        results[name] = _traced_train_step(zoo.build(name))
        keras.backend.clear_session()
    print("graph nodes, trace seconds:", results)
    # Equal up to a few shape-dependent nodes (widths 112 vs 128), not ~16× more.
    for deep, shallow in (("hamiltonian-1202", "hamiltonian-74"), ("revnet-110", "revnet-38")):
        assert abs(results[deep][0] - results[shallow][0]) <= 0.02 * results[shallow][0]
    # Same graph, so the same trace time up to noise.
    assert results["hamiltonian-1202"][1] < 3 * results["hamiltonian-74"][1] + 1.0


def test_hamiltonian_1202_builds_and_steps_quickly():
    start = time.perf_counter()
    model = zoo.build("hamiltonian-1202")
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, np.arange(4) % 10)
    seconds = time.perf_counter() - start
    print(f"hamiltonian-1202 build + first step (batch 4): {seconds:.1f} s")
    assert np.isfinite(loss)


STATS_SCRIPT = """
import zoo
from zoo.research import analysis
print("available", analysis.allocator_stats_available())
model = zoo.build("hamiltonian-74")
try:
    analysis.train_step_peak_bytes(model, 2)
except RuntimeError as e:
    print("error", e)
else:
    print("measured")
"""


def _stats_process(env, script=STATS_SCRIPT, args=()):
    """Runs `script` in a fresh process whose environment sets the allocator
    only as `env` says, and returns its stdout."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"} | env
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300,
                          env=dict(env, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_memory_is_measured_with_the_allocator_that_keeps_statistics():
    assert "available True" in _stats_process(ALLOCATOR_STATS_ENV)
    # With the other allocator a measurement must not read zeros or stale
    # peaks: it fails and says which environment to start with. (Where the
    # default allocator keeps statistics too, it measures.)
    out = _stats_process({"TF_CPU_ALLOCATOR_USE_BFC": "false"})
    if "available False" in out:
        assert "error" in out and "TF_CPU_ALLOCATOR_USE_BFC=true" in out, out
    else:
        assert "measured" in out, out


TOOL_SCRIPT = """
import runpy, sys
runpy.run_path(sys.argv[1], run_name="imported")
from zoo.research import analysis
print("available", analysis.allocator_stats_available())
"""


@pytest.mark.parametrize("tool", ["register_checkpoint.py", "deep_training.py"])
def test_tools_that_measure_memory_choose_the_allocator_before_tensorflow_starts(tool):
    out = _stats_process({}, TOOL_SCRIPT, [os.path.join(REPO_ROOT, "tools", tool)])
    assert "available True" in out, out
