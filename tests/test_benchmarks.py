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


@pytest.mark.benchmark
def test_benchmark_tool_quick(tmp_path):
    """The tool end to end on the two shallower depths (about 5 minutes)."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    proc = subprocess.run([sys.executable, "tools/benchmark.py", "--quick",
                           "--output_dir", str(tmp_path), "--markdown", str(tmp_path / "B.md")],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    assert "| goal |" in (tmp_path / "B.md").read_text()


def _synthetic_results():
    rows = []
    for model, per_sample in (("hamiltonian-74-cifar10", 1.0), ("hamiltonian-1202-cifar10", 1.1)):
        for reversible in (True, False):
            for batch in (8, 32):
                slope = per_sample if reversible else per_sample * 10
                rows.append({"model": model, "reversible": reversible, "batch": batch,
                             "policy": "float32", "parameters": 1,
                             "allocator_peak_bytes": int((100 + slope * batch) * 2**20),
                             "process_peak_rss_bytes": 2**30 * (1 if "-74-" in model else 3),
                             "build_seconds": 1.0,
                             "trace_seconds": 0.5 if "-74-" in model else 1.0,
                             "first_step_seconds": 2.0, "step_seconds": 0.5,
                             "images_per_second": batch / 0.5})
    throughput = [{"model": "hamiltonian-74-cifar10", "policy": p, "reversible": r, "batch": 128,
                   "images_per_second": v}
                  for p, r, v in (("float32", True, 80), ("float32", False, 100),
                                  ("mixed_bfloat16", True, 150), ("mixed_bfloat16", False, 310))]
    return {"machine": {"platform": "p", "processor": "x", "cpu_count": 2, "python": "3",
                        "tensorflow": "2"}, "train_step": rows, "throughput": throughput,
            "flops": {"model": "hamiltonian-74-cifar10", "forward_flops": 300_000_000,
                      "parameters": 1},
            "matmul": [{"dtype": "float32", "n": 8, "flops_per_second": 180e9},
                       {"dtype": "bfloat16", "n": 8, "flops_per_second": 360e9}],
            "inference": None, "started": "a", "finished": "b",
            "peer": {"rows": [{"round": r, "policy": "float32", "framework": f,
                               "images_per_second": v, "detail": "PyTorch 2.13.0 eager"}
                              for r, f, v in ((0, "zoo", 105), (0, "pytorch", 100),
                                              (1, "zoo", 110), (1, "pytorch", 90))],
                     "ratio": {"float32": 1.1}},
            "onednn": {"model": "hamiltonian-74-cifar10", "batch": 128,
                       "rows": [{"round": 0, "onednn_opts": "0", "images_per_second": 36.0},
                                {"round": 0, "onednn_opts": "1", "images_per_second": 59.0}]},
            "profile": {"model": "hamiltonian-74-cifar10", "policy": "float32", "reversible": False,
                        "batch": 128, "steps": 3, "step_seconds": 0.5,
                        "ops": [{"op": "Conv2DBackpropFilter", "ms_per_step": 250.0,
                                 "share": 0.331}]}}


def test_benchmark_report_computes_the_goals_from_the_rows():
    from zoo.research import benchmarks

    results = _synthetic_results()
    slopes = benchmarks.activation_per_sample(results)
    assert slopes[("hamiltonian-74-cifar10", True)] == pytest.approx(2**20)
    goals = {name: (value, met) for name, value, _, met in benchmarks.goals(results)}
    memory = goals["activation memory per sample, reversible, 1202 vs 74 layers"]
    assert memory[0] == pytest.approx(1.1) and memory[1]
    assert goals["build + trace, reversible, 1202 vs 74 layers"] == (pytest.approx(4 / 3), True)
    assert goals["build + trace + first step, reversible, 1202 vs 74 layers"] == (
        pytest.approx(4 / 3.5), True)
    assert goals["process peak memory, reversible, 1202 vs 74 layers"] == (3.0, False)
    assert goals["training throughput reversible / autodiff (float32)"] == (0.8, False)
    assert goals["training throughput reversible / autodiff (mixed_bfloat16)"][1] is False
    assert goals["training img/s, best engine (mixed_bfloat16)"] == (310, True)
    # Autodiff against the ceiling (matmul rate / 3 forward passes): 100/200, 310/400.
    assert goals["autodiff training img/s / matmul ceiling (float32)"] == (0.5, False)
    assert goals["autodiff training img/s / matmul ceiling (mixed_bfloat16)"] == (
        pytest.approx(0.775), False)
    # The PyTorch peer: the best round of each framework.
    assert goals["ResNet-32 training img/s, zoo / PyTorch eager (float32)"] == (
        pytest.approx(1.1), True)
    text = benchmarks.markdown(results, "cmd", [])
    assert "| 2 | float32 | 110 | 90 |" in text and "float32 1.10×" in text
    assert "| Conv2DBackpropFilter | 250 | 33.1% |" in text
    assert "| 1 | 0 | 36 |" in text and "| 1 | 1 | 59 |" in text
    assert "| ResNet-32 training img/s, zoo / PyTorch eager (float32) | 1.10× | ≥ 1.0× | yes |" in text
    assert "| training img/s, best engine (mixed_bfloat16) | 310 | ≥ 300 | yes |" in text
    assert "| hamiltonian-1202-cifar10 | reversible | 32 | 135.2 | 1.10 | 3072 | 1.0 | 1.00 |" in text
    assert "**no**" in text
    # The ceiling: matmul rate / (3 forward passes autodiff, 4 reversible).
    limits = benchmarks.ceilings(results)
    assert limits["float32"]["images_per_second"] == pytest.approx(200)
    assert limits["bfloat16"]["reversible_images_per_second"] == pytest.approx(300)
    assert "| mixed_bfloat16 | 360 | 0.90 | 400 | 310 | 300 | 150 |" in text


def test_forward_flops_count_every_convolution_of_a_resnet():
    from zoo.research import benchmarks

    # ResNet-32 by hand: the 3→16 stem, 31 3×3 convolutions at 16/32/64
    # channels (two with stride 2), the 64→10 dense layer; 2 FLOP per
    # multiply-add. The profiler adds the batch norms' element-wise work.
    conv = 2 * 9 * (32 * 32 * 3 * 16 + 10 * 32 * 32 * 16 * 16
                    + 16 * 16 * 16 * 32 + 9 * 16 * 16 * 32 * 32
                    + 8 * 8 * 32 * 64 + 9 * 8 * 8 * 64 * 64)
    flops = benchmarks.forward_flops("resnet-32-cifar10")["forward_flops"]
    assert conv + 2 * 64 * 10 <= flops <= 1.01 * conv


def test_thread_pools_are_set_and_cores_busy_is_measured():
    from zoo.research import benchmarks

    one, two = benchmarks.threading_sweep(
        "resnet-32-cifar10", batch=8, steps=2, settings=((1, 1), (2, 1)), log=lambda _: None)
    assert (one["intra_op_threads"], one["inter_op_threads"]) == (1, 1)
    # One thread in each pool cannot keep much more than one core busy.
    assert 0.3 < one["cores_busy"] < 1.3, one
    assert two["intra_op_threads"] == 2 and two["cores_busy"] > 0.3
    text = benchmarks.threading_markdown([one, two], benchmarks.machine(), "cmd")
    assert "| resnet-32-cifar10 | autodiff | float32 | 8 | 1 | 1 |" in text
    assert text.count("\n| resnet-32") == 2
