"""Benchmarks of the reversible engine: memory, trace time and throughput.

Each measurement runs in a fresh Python process (`run_isolated`), so that
the allocator's and the process's peaks, and the trace time, belong to that
measurement alone. `tools/benchmark.py` runs them side by side and writes
BENCHMARKS.md, a JSON file and plots.

Figures:
  * `train_step`: one model, engine, batch: TF allocator peak of a training
    step above what was in use before it, the process's peak resident memory
    (ru_maxrss), time to build the model, to trace the step function (no
    execution), to run the first call (graph optimisation plus one step) and
    a steady step;
  * activation memory per sample: the allocator peak's slope over two batch
    sizes (weights, gradients and optimizer state cancel);
  * `throughput`: training images per second (compiled SGD steps on fixed
    random images: the model alone, not the input pipeline);
  * `inference`: images per second at batch 100 and latency at batch 1, of the
    Keras model and of its exported SavedModel;
  * `forward_flops` and `matmul_flops_per_second`: the model's operation
    count and the machine's dense-matmul rate, whose ratio (`ceilings`) bounds
    the training throughput any engine could reach here.
"""

import os
import platform
import resource
import tempfile
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def machine():
    """What the figures were measured on."""
    import tensorflow as tf

    info = {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__}
    try:
        import keras

        info["keras"] = keras.__version__
    except ImportError:
        pass
    from zoo.provenance import cpu_info

    info["cpu_model"] = cpu_info()["cpu_model"]
    return info


def run_isolated(function, env=None, **kwargs):
    """Runs zoo.research.benchmarks.<function>(**kwargs) in a fresh process (with `env`
    added to its environment); returns its dict."""
    from zoo.runtime import call_isolated

    return call_isolated("zoo.research.benchmarks", function, env=env, **kwargs)


def onednn_comparison(model="hamiltonian-74-cifar10", batch=128, steps=8, rounds=2, log=print):
    """Float32 autodiff training img/s with TensorFlow's oneDNN kernels off
    (TF_ENABLE_ONEDNN_OPTS=0) and on (=1), fresh processes, alternating over
    `rounds`."""
    rows = []
    for round_ in range(rounds):
        for setting in ("0", "1"):
            r = run_isolated("throughput", env={"TF_ENABLE_ONEDNN_OPTS": setting}, model=model,
                             reversible=False, batch=batch, steps=steps)
            rows.append({"round": round_, "onednn_opts": setting,
                         "images_per_second": r["images_per_second"]})
            log(f"oneDNN={setting} round {round_ + 1}: {r['images_per_second']:.0f} img/s")
    return {"model": model, "batch": batch, "rows": rows}


def _set_policy(policy):
    import keras

    keras.config.set_dtype_policy(policy)


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_step(model, reversible, batch, policy="float32", steps=2, intra_op_threads=None,
               inter_op_threads=None):
    """Memory and time of training steps of `model` (a zoo name).

    `cores_busy` is the process's CPU time over the wall time of the timed
    steps: how many cores the steps kept busy on average. The thread-pool
    sizes (None: TensorFlow's default, one thread per core) must be set
    before TensorFlow runs anything, so use this in a fresh process.
    """
    import keras
    import tensorflow as tf

    from zoo import registry
    from zoo.research import analysis

    if intra_op_threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    if inter_op_threads is not None:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    _set_policy(policy)
    analysis.require_allocator_stats("CPU:0")
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    network = registry.build(model, reversible=reversible)
    build_seconds = time.perf_counter() - start
    step = analysis.compiled_train_step(network, batch)
    # Tracing alone, without running anything: the part of start-up that
    # the engine's loops keep independent of depth.
    start = time.perf_counter()
    step.get_concrete_function()
    trace_seconds = time.perf_counter() - start
    start = time.perf_counter()
    step().numpy()
    first_step_seconds = time.perf_counter() - start
    tf.config.experimental.reset_memory_stats("CPU:0")
    base = tf.config.experimental.get_memory_info("CPU:0")["current"]
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    for _ in range(steps):
        step().numpy()
    wall = time.perf_counter() - start
    cores_busy = (_cpu_seconds() - cpu_start) / wall
    step_seconds = wall / steps
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] - base
    return {
        "model": model, "reversible": reversible, "batch": batch, "policy": policy,
        "parameters": int(network.count_params()),
        "allocator_peak_bytes": int(peak),
        "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "build_seconds": build_seconds, "trace_seconds": trace_seconds,
        "first_step_seconds": first_step_seconds,
        "step_seconds": step_seconds, "images_per_second": batch / step_seconds,
        "cores_busy": cores_busy, "intra_op_threads": intra_op_threads,
        "inter_op_threads": inter_op_threads,
    }


def throughput(model, reversible, batch=128, policy="float32", steps=8, intra_op_threads=None,
               inter_op_threads=None):
    """Training images per second: `steps` compiled SGD steps after the first
    (traced) one, on fixed random images (the model alone, no input pipeline)."""
    return train_step(model, reversible, batch, policy, steps=steps,
                      intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads)


THREAD_SETTINGS = ((None, None), (1, 1), (2, 1), (1, 2), (2, 2), (4, 1))


def threading_sweep(model="hamiltonian-74-cifar10", reversible=False, batch=128,
                    policy="float32", steps=4, settings=THREAD_SETTINGS, log=print):
    """Throughput and cores kept busy for each (intra-op, inter-op) thread-pool
    size, each in its own process."""
    rows = []
    for intra, inter in settings:
        r = run_isolated("throughput", model=model, reversible=reversible, batch=batch,
                         policy=policy, steps=steps, intra_op_threads=intra,
                         inter_op_threads=inter)
        log(f"threads intra={intra} inter={inter}: {r['images_per_second']:.1f} img/s, "
            f"{r['cores_busy']:.2f} cores busy")
        rows.append(r)
    return rows


def forward_flops(model):
    """Floating-point operations of one forward pass of `model` (a zoo name)
    on one image, inference mode, as TensorFlow's profiler counts them (every
    convolution and matmul, and the element-wise ops it has statistics for).

    The units' loops are unrolled for the count (`engine.unrolled`), since
    the profiler counts a loop body once.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    from zoo import engine, registry

    _set_policy("float32")
    network = registry.build(model, reversible=False)
    spec = tf.TensorSpec((1,) + tuple(network.input_shape[1:]), tf.float32)
    with engine.unrolled():
        concrete = tf.function(lambda x: network(x, training=False)).get_concrete_function(spec)
    graph = convert_variables_to_constants_v2(concrete).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(),
                                            cmd="op", options=options)
    return {"model": model, "forward_flops": int(profile.total_float_ops),
            "parameters": int(network.count_params())}


def matmul_flops_per_second(dtype="float32", n=2048, repeats=10):
    """What this machine's TensorFlow reaches on a large dense matrix product
    (2 n³ operations per product, median of `repeats`): a practical ceiling
    for convolution-bound training."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n)), getattr(tf, dtype))
    b = tf.constant(rng.standard_normal((n, n)), getattr(tf, dtype))
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    product().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        times.append(time.perf_counter() - start)
    return {"dtype": dtype, "n": n, "flops_per_second": 2 * n**3 / float(np.median(times))}

def inference(model, batch=100, repeats=5, latency_repeats=30):
    """Inference speed of the pretrained (or untrained) Keras model and of its
    SavedModel export: images/s at `batch`, median latency at batch 1."""
    import tensorflow as tf

    from zoo import pretrained, registry
    from zoo import export

    _set_policy("float32")
    if pretrained.has_checkpoint(model):
        network = pretrained.load(model, reversible=False)
        labels = pretrained.info(model)["labels"]
    else:
        network = registry.build(model, reversible=False)
        labels = [str(i) for i in range(network.output_shape[-1])]
    rng = np.random.default_rng(0)
    shape = network.input_shape[1:]
    images = rng.integers(0, 256, (batch,) + shape).astype("uint8")
    one = images[:1]

    predict = tf.function(lambda x: network(x, training=False))

    def keras_call(x):
        return predict(tf.constant(x, tf.float32)).numpy()

    with tempfile.TemporaryDirectory() as directory:
        path = export.export_saved_model(network, directory, "bench", 1, labels)
        serving = tf.saved_model.load(path).signatures["serving_default"]

        def saved_call(x):
            return serving(images=tf.constant(x))["probabilities"].numpy()

        result = {"model": model, "batch": batch}
        for name, call in (("keras", keras_call), ("saved_model", saved_call)):
            call(images)
            call(one)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                call(images)
                times.append(time.perf_counter() - start)
            result[f"{name}_images_per_second"] = batch / float(np.median(times))
            latencies = []
            for _ in range(latency_repeats):
                start = time.perf_counter()
                call(one)
                latencies.append(time.perf_counter() - start)
            result[f"{name}_latency_ms"] = 1000 * float(np.median(latencies))
    return result


DEPTHS = ("hamiltonian-74-cifar10", "hamiltonian-218-cifar10", "hamiltonian-1202-cifar10")


def op_profile(model="hamiltonian-74-cifar10", reversible=False, batch=128,
               policy="float32", steps=3, top=20):
    """Where a compiled training step spends its time: TensorFlow's profiler
    over `steps` steps (after two warm-up steps), kernel time summed per op
    type over the executor's threads. Returns {"ops": [{"op", "ms_per_step",
    "share"}], ...}, the largest `top` first."""
    import collections
    import glob
    import re

    import keras
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    from zoo import registry
    from zoo.research import analysis

    _set_policy(policy)
    keras.utils.set_random_seed(0)
    network = registry.build(model, reversible=reversible)
    step = analysis.compiled_train_step(network, batch)
    for _ in range(2):
        step().numpy()
    logdir = tempfile.mkdtemp(prefix="zoo-profile-")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    totals = collections.Counter()
    for line in plane.lines:
        if line.name == "python":  # the Python thread only waits for the executor
            continue
        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            if name.startswith("ExecutorState"):
                continue
            # Node names end with the op's own name: ".../Conv2D_2_grad/Conv2DBackpropFilter".
            totals[re.sub(r"_\d+$", "", name.split("/")[-1].split(":")[0])] += event.duration_ps
    total = sum(totals.values())
    return {"model": model, "reversible": reversible, "batch": batch, "policy": policy,
            "steps": steps, "step_seconds": wall, "kernel_ms_per_step": total / 1e9 / steps,
            "ops": [{"op": op, "ms_per_step": ps / 1e9 / steps, "share": ps / total}
                    for op, ps in totals.most_common(top)]}


def peer_available():
    """Whether the optional PyTorch peer (zoo.research.torch_peer) can run here."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def peer_comparison(batch=128, steps=8, rounds=2, policies=("float32",), log=print):
    """ResNet-32 training img/s in zoo (Keras/TensorFlow, autodiff) and in
    PyTorch eager (zoo.research.torch_peer), each configuration in a fresh process,
    interleaved over `rounds` so that both see the same machine. Returns
    {"rows": [...], "ratio": {policy: zoo / PyTorch (best round of each)}}."""
    from zoo.runtime import call_isolated

    rows = []
    for round_ in range(rounds):
        for policy in policies:
            ours = run_isolated("throughput", model="resnet-32-cifar10", reversible=False,
                                batch=batch, policy=policy, steps=steps)
            theirs = call_isolated("zoo.research.torch_peer", "throughput", batch=batch, steps=steps,
                                   bfloat16=policy != "float32")
            for framework, r in (("zoo", ours), ("pytorch", theirs)):
                rows.append({"round": round_, "policy": policy, "framework": framework,
                             "images_per_second": r["images_per_second"],
                             "detail": r.get("framework", "Keras/TensorFlow, compiled step")})
            log(f"ResNet-32 {policy} round {round_ + 1}: zoo {ours['images_per_second']:.0f} "
                f"img/s, PyTorch eager {theirs['images_per_second']:.0f} img/s")
    ratio = {}
    for policy in policies:
        best = {f: max(r["images_per_second"] for r in rows
                       if r["policy"] == policy and r["framework"] == f)
                for f in ("zoo", "pytorch")}
        ratio[policy] = best["zoo"] / best["pytorch"]
    return {"rows": rows, "ratio": ratio}


def run_all(depth_models=DEPTHS, batches=(8, 32), throughput_model="hamiltonian-74-cifar10",
            throughput_batch=128, throughput_steps=8, inference_model="hamiltonian-74-cifar10",
            peer=None, log=print):
    """Every benchmark, each configuration in its own process. Returns a dict."""
    results = {"machine": machine(), "train_step": [], "throughput": [], "inference": None,
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    for model in depth_models:
        for reversible in (True, False):
            for batch in batches:
                r = run_isolated("train_step", model=model, reversible=reversible, batch=batch)
                log(f"train_step {model} reversible={reversible} batch={batch}: "
                    f"{r['allocator_peak_bytes'] / 2**20:.1f} MiB allocator peak, "
                    f"trace {r['trace_seconds']:.2f} s, first call {r['first_step_seconds']:.1f} s")
                results["train_step"].append(r)
    for policy in ("float32", "mixed_bfloat16"):
        for reversible in (True, False):
            r = run_isolated("throughput", model=throughput_model, reversible=reversible,
                             batch=throughput_batch, policy=policy, steps=throughput_steps)
            log(f"throughput {policy} reversible={reversible}: {r['images_per_second']:.0f} img/s")
            results["throughput"].append(r)
    results["flops"] = run_isolated("forward_flops", model=throughput_model)
    results["matmul"] = [run_isolated("matmul_flops_per_second", dtype=dtype)
                         for dtype in ("float32", "bfloat16")]
    log(f"forward flops {results['flops']['forward_flops'] / 1e6:.1f} M; matmul "
        + ", ".join(f"{m['dtype']} {m['flops_per_second'] / 1e9:.0f} GFLOP/s"
                    for m in results["matmul"]))
    if inference_model:
        results["inference"] = run_isolated("inference", model=inference_model)
        log(f"inference: {results['inference']}")
    results["onednn"] = onednn_comparison(throughput_model, throughput_batch, throughput_steps,
                                          log=log)
    results["profile"] = run_isolated("op_profile", model=throughput_model)
    log("profile: " + ", ".join(f"{o['op']} {100 * o['share']:.0f}%"
                                for o in results["profile"]["ops"][:6]))
    if peer is None:
        peer = peer_available()
    if peer:
        from zoo.provenance import native_bfloat16

        policies = ("float32", "mixed_bfloat16") if native_bfloat16() else ("float32",)
        results["peer"] = peer_comparison(steps=throughput_steps, policies=policies, log=log)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return results


def activation_per_sample(results):
    """{(model, reversible): bytes per sample} from the train_step rows."""
    rows = {}
    for r in results["train_step"]:
        rows.setdefault((r["model"], r["reversible"]), {})[r["batch"]] = r["allocator_peak_bytes"]
    slopes = {}
    for key, peaks in rows.items():
        small, large = min(peaks), max(peaks)
        if large > small:
            slopes[key] = (peaks[large] - peaks[small]) / (large - small)
    return slopes


def _row(results, model, reversible, batch):
    for r in results["train_step"]:
        if (r["model"], r["reversible"], r["batch"]) == (model, reversible, batch):
            return r
    return None


def goals(results):
    """The issue's targets, each with the measured value and whether it is met."""
    out = []
    slopes = activation_per_sample(results)
    models = sorted({r["model"] for r in results["train_step"]},
                    key=lambda m: int(m.split("-")[1]))
    shallow, deep = models[0], models[-1]
    if (deep, True) in slopes and (shallow, True) in slopes:
        ratio = slopes[(deep, True)] / slopes[(shallow, True)]
        out.append(("activation memory per sample, reversible, "
                    f"{deep.split('-')[1]} vs {shallow.split('-')[1]} layers", ratio, "≤ 1.2×",
                    ratio <= 1.2))
    batch = max(r["batch"] for r in results["train_step"])
    a, b = _row(results, shallow, True, batch), _row(results, deep, True, batch)
    layers = f"{deep.split('-')[1]} vs {shallow.split('-')[1]} layers"
    if a and b and "trace_seconds" in a and "trace_seconds" in b:
        ratio = (b["build_seconds"] + b["trace_seconds"]) / (
            a["build_seconds"] + a["trace_seconds"])
        out.append((f"build + trace, reversible, {layers}", ratio, "≤ 2×", ratio <= 2))
    if a and b:
        # Includes executing one step, which grows with depth by necessity.
        ratio = ((b["build_seconds"] + b.get("trace_seconds", 0) + b["first_step_seconds"])
                 / (a["build_seconds"] + a.get("trace_seconds", 0) + a["first_step_seconds"]))
        out.append((f"build + trace + first step, reversible, {layers}", ratio, "≤ 2×",
                    ratio <= 2))
        ratio = b["process_peak_rss_bytes"] / a["process_peak_rss_bytes"]
        out.append((f"process peak memory, reversible, {layers}", ratio, "≤ 2×", ratio <= 2))
    by = {(r["policy"], r["reversible"]): r["images_per_second"] for r in results["throughput"]}
    for policy in ("float32", "mixed_bfloat16"):
        if (policy, True) in by and (policy, False) in by:
            ratio = by[(policy, True)] / by[(policy, False)]
            out.append((f"training throughput reversible / autodiff ({policy})", ratio, "≥ 0.85×",
                        ratio >= 0.85))
    limits = ceilings(results)
    for dtype, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16")):
        if dtype in limits and (policy, False) in by:
            ratio = by[(policy, False)] / limits[dtype]["images_per_second"]
            out.append((f"autodiff training img/s / matmul ceiling ({policy})", ratio, "≥ 0.8×",
                        ratio >= 0.8))
    for policy, ratio in ((results.get("peer") or {}).get("ratio") or {}).items():
        out.append((f"ResNet-32 training img/s, zoo / PyTorch eager ({policy})", ratio, "≥ 1.0×",
                    ratio >= 1.0))
    for policy in ("float32", "mixed_bfloat16"):
        best = max((v for (p, _), v in by.items() if p == policy), default=None)
        if best is not None:
            out.append((f"training img/s, best engine ({policy})", best, "≥ 300", best >= 300))
    return out


def plot(results, output_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slopes = activation_per_sample(results)
    models = sorted({r["model"] for r in results["train_step"]},
                    key=lambda m: int(m.split("-")[1]))
    depths = [int(m.split("-")[1]) for m in models]
    batch = max(r["batch"] for r in results["train_step"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for reversible, style in ((True, "o-"), (False, "s--")):
        label = "reversible" if reversible else "autodiff"
        axes[0].plot(depths, [slopes.get((m, reversible), np.nan) / 2**20 for m in models], style,
                     label=label)
        axes[1].plot(depths, [_row(results, m, reversible, batch)["process_peak_rss_bytes"] / 2**30
                              for m in models], style, label=label)
        axes[2].plot(depths, [(_row(results, m, reversible, batch)["build_seconds"]
                               + _row(results, m, reversible, batch).get("trace_seconds", 0))
                              for m in models], style, label=label)
    titles = ("activation MiB per sample", f"process peak GiB (batch {batch})",
              f"build + trace s (batch {batch})")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("layers")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(output_dir, "benchmarks_memory.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


# Backward ≈ 2× forward for convolutions (gradients with respect to the input
# and to the kernel each cost one forward convolution): a training step is
# about 3 forward passes, plus one more for the reversible engine's rebuild.
TRAINING_FORWARD_PASSES = {False: 3, True: 4}


def ceilings(results):
    """Training img/s that the machine's dense-matmul rate would allow at the
    model's operation count, per precision: {dtype: {...}} (empty without
    the figures)."""
    flops, matmul = results.get("flops"), results.get("matmul")
    if not flops or not matmul:
        return {}
    out = {}
    for m in matmul:
        per_image = TRAINING_FORWARD_PASSES[False] * flops["forward_flops"]
        out[m["dtype"]] = {
            "flops_per_second": m["flops_per_second"],
            "training_flops_per_image": per_image,
            "images_per_second": m["flops_per_second"] / per_image,
            "reversible_images_per_second": m["flops_per_second"] / (
                TRAINING_FORWARD_PASSES[True] * flops["forward_flops"]),
        }
    return out


def _ceiling_lines(results):
    limits = ceilings(results)
    if not limits:
        return []
    flops = results["flops"]
    by = {(r["policy"], r["reversible"]): r["images_per_second"] for r in results["throughput"]}
    lines = [
        "",
        "## What the hardware allows",
        "",
        f"One forward pass of {flops['model']} costs {flops['forward_flops'] / 1e6:.1f} MFLOP per "
        "image (TensorFlow's profiler over the graph with the units' loops unrolled, "
        "`zoo.research.benchmarks.forward_flops`). A training step costs about 3 forward passes "
        "(backward ≈ 2× forward for convolutions: an estimate, not a count) and 4 with the "
        "reversible engine's rebuild. The ceiling divides that by what TensorFlow reaches on a "
        "2048×2048 matrix product on this machine (`matmul_flops_per_second`), which "
        "convolutions of 16 to 56 channels do not reach.",
        "",
        "| precision | matmul GFLOP/s | training GFLOP per image | ceiling img/s (autodiff) "
        "| measured img/s (autodiff) | ceiling img/s (reversible) | measured img/s (reversible) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for dtype, policy in (("float32", "float32"), ("bfloat16", "mixed_bfloat16")):
        if dtype not in limits:
            continue
        c = limits[dtype]
        measured = [by.get((policy, False)), by.get((policy, True))]
        shown = ["-" if v is None else f"{v:.0f}" for v in measured]
        lines.append(
            f"| {policy} | {c['flops_per_second'] / 1e9:.0f} | "
            f"{c['training_flops_per_image'] / 1e9:.2f} | {c['images_per_second']:.0f} | "
            f"{shown[0]} | {c['reversible_images_per_second']:.0f} | {shown[1]} |")
    return lines


def _onednn_lines(results):
    onednn = results.get("onednn")
    if not onednn:
        return []
    lines = ["", "## oneDNN kernels", "",
             f"{onednn['model']}, float32, autodiff, batch {onednn['batch']}, with "
             "TF_ENABLE_ONEDNN_OPTS set to 0 or 1 before TensorFlow starts (`import zoo` sets 1 "
             "unless you chose; `zoo.runtime`). Fresh process each, alternating.", "",
             "| round | TF_ENABLE_ONEDNN_OPTS | img/s |", "| --- | --- | --- |"]
    for r in onednn["rows"]:
        lines.append(f"| {r['round'] + 1} | {r['onednn_opts']} | {r['images_per_second']:.0f} |")
    return lines


def _profile_lines(results, top=12):
    prof = results.get("profile")
    if not prof:
        return []
    lines = ["", "## Where a training step spends its time", "",
             f"{prof['model']}, {prof['policy']}, "
             f"{'reversible' if prof['reversible'] else 'autodiff'}, batch {prof['batch']}: "
             f"TensorFlow's profiler over {prof['steps']} compiled steps "
             f"({prof['step_seconds']:.2f} s a step while profiled), kernel time summed per op "
             "type over the executor's threads (`zoo.research.benchmarks.op_profile`). Kernels that run "
             "at once share the cores, so a share is of kernel time, not of the step's wall "
             "time: the backward pass runs the input and filter gradients of a convolution "
             "side by side, which stretches both.", "",
             "| op | ms per step | share of kernel time |", "| --- | --- | --- |"]
    for o in prof["ops"][:top]:
        lines.append(f"| {o['op']} | {o['ms_per_step']:.0f} | {100 * o['share']:.1f}% |")
    return lines


def _peer_lines(results):
    peer = results.get("peer")
    if not peer:
        return []
    lines = ["", "## ResNet-32 against PyTorch", "",
             "The same network (`zoo.research.torch_peer`: 464,154 parameters, per-image "
             "standardisation inside, option-A shortcuts) and the same SGD step (momentum 0.9, "
             "Nesterov, weight decay 5e-4) on fixed random images at batch 128, in PyTorch eager "
             "mode with torch.autocast for bfloat16; zoo's figure is the compiled Keras step, "
             "autodiff. Rounds alternate the two, each in a fresh process.", "",
             "| round | precision | zoo img/s | PyTorch eager img/s |", "| --- | --- | --- | --- |"]
    by = {(r["round"], r["policy"], r["framework"]): r["images_per_second"] for r in peer["rows"]}
    for (round_, policy, framework), value in by.items():
        if framework == "zoo":
            lines.append(f"| {round_ + 1} | {policy} | {value:.0f} | "
                         f"{by[(round_, policy, 'pytorch')]:.0f} |")
    detail = next(r["detail"] for r in peer["rows"] if r["framework"] == "pytorch")
    lines += ["", f"Peer: {detail}. Ratio of the best rounds: "
              + ", ".join(f"{p} {v:.2f}×" for p, v in peer["ratio"].items()) + "."]
    return lines


def _seconds(value):
    return "-" if value is None else f"{value:.2f}"


def threading_markdown(rows, machine_info, command):
    """The thread-pool sweep (`threading_sweep`) as a Markdown report."""
    m = machine_info
    lines = [
        "# Training throughput against TensorFlow's thread pools",
        "",
        f"Generated by `{command}` (`zoo.research.benchmarks.threading_sweep`); raw figures in "
        "`threading.json` beside this file.",
        "",
        f"Machine: {m.get('cpu_model') or m['processor']}, {m['cpu_count']} cores as seen by the "
        f"process, TensorFlow {m['tensorflow']}. Each row ran in a fresh process: compiled SGD "
        "steps on fixed random images after a traced first step. Cores busy: the process's CPU "
        "time over the wall time of the timed steps. Threads: TensorFlow's intra-op and "
        "inter-op pool sizes (default: one thread per core each).",
        "",
        "| model | engine | precision | batch | intra-op | inter-op | img/s | cores busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {'reversible' if r['reversible'] else 'autodiff'} | {r['policy']} "
            f"| {r['batch']} | {r['intra_op_threads'] or 'default'} "
            f"| {r['inter_op_threads'] or 'default'} | {r['images_per_second']:.1f} "
            f"| {r['cores_busy']:.2f} |")
    return "\n".join(lines) + "\n"


def markdown(results, command, plots, json_path=os.path.join(_ROOT, "docs", "benchmarks",
                                                              "benchmarks.json")):
    m = results["machine"]
    slopes = activation_per_sample(results)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` (zoo.research.benchmarks) between {results['started']} and "
        f"{results['finished']}; raw figures in `{os.path.relpath(json_path, _ROOT)}`, plot "
        + ", ".join(f"`{os.path.relpath(p, _ROOT)}`" for p in plots) + ".",
        "",
        f"Machine: {m.get('cpu_model') or m['processor']}, {m['cpu_count']} cores as seen by "
        f"the process, {m['platform']}, Python {m['python']}, TensorFlow {m['tensorflow']}, "
        f"Keras {m.get('keras', '?')}. Each configuration ran in a fresh process. No GPU.",
        "",
        "## Goals",
        "",
        "| goal | measured | target | met |",
        "| --- | --- | --- | --- |",
    ]
    for name, value, target, met in goals(results):
        shown = f"{value:.2f}×" if "×" in target else f"{value:.0f}"
        lines.append(f"| {name} | {shown} | {target} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "## Memory and trace time against depth",
        "",
        "One SGD training step on random CIFAR-sized images, float32. Allocator peak: TF's",
        "CPU allocator peak above what was in use before the step. Activation per sample:",
        "that peak's slope over the batch sizes, which cancels weights, gradients and",
        "optimizer state. Process peak: ru_maxrss of the process (includes TensorFlow itself).",
        "Trace: `get_concrete_function` of the step, nothing executed. First call: graph",
        "optimisation and one step, whose execution grows with depth like any step's.",
        "",
        "| model | engine | batch | allocator peak MiB | activation MiB/sample | process peak MiB "
        "| build s | trace s | first call s | step s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["train_step"]:
        slope = slopes.get((r["model"], r["reversible"]))
        slope_text = f"{slope / 2**20:.2f}" if slope is not None else "-"
        lines.append(
            f"| {r['model']} | {'reversible' if r['reversible'] else 'autodiff'} | {r['batch']} | "
            f"{r['allocator_peak_bytes'] / 2**20:.1f} | {slope_text} | "
            f"{r['process_peak_rss_bytes'] / 2**20:.0f} | {r['build_seconds']:.1f} | "
            f"{_seconds(r.get('trace_seconds'))} | "
            f"{r['first_step_seconds']:.1f} | {r['step_seconds']:.2f} |")
    lines += [
        "",
        "## Training throughput",
        "",
        "Compiled SGD steps on fixed random images (the model alone; the input pipeline is",
        "measured separately by `pytest -m benchmark tests/test_benchmarks.py`). On a",
        "shared virtual machine these figures move between runs (the hypervisor takes a",
        "varying share of the CPU): compare figures from one run only, and repeat a run",
        "before drawing a conclusion from a ratio.",
        "",
        "| model | precision | engine | batch | img/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results["throughput"]:
        lines.append(f"| {r['model']} | {r['policy']} | "
                     f"{'reversible' if r['reversible'] else 'autodiff'} | {r['batch']} | "
                     f"{r['images_per_second']:.0f} |")
    inf = results.get("inference")
    lines += _ceiling_lines(results)
    lines += _peer_lines(results)
    lines += _profile_lines(results)
    lines += _onednn_lines(results)
    if inf:
        lines += [
            "",
            "## Inference",
            "",
            f"{inf['model']}, float32, the plain-autodiff graph; medians.",
            "",
            f"| runtime | img/s at batch {inf['batch']} | latency at batch 1 (ms) |",
            "| --- | --- | --- |",
            f"| Keras model (tf.function) | {inf['keras_images_per_second']:.0f} | "
            f"{inf['keras_latency_ms']:.1f} |",
            f"| exported SavedModel (serving_default) | {inf['saved_model_images_per_second']:.0f} "
            f"| {inf['saved_model_latency_ms']:.1f} |",
        ]
    lines.append("")
    return "\n".join(lines)
