"""Benchmarks of the reversible engine (zoo.research.benchmarks): memory and trace time
against depth, training throughput, inference speed. Writes BENCHMARKS.md,
docs/benchmarks/benchmarks.json and a plot.

    python tools/benchmark.py                 # Hamiltonian-74/218/1202, about 15 minutes on 2 cores
    python tools/benchmark.py --quick         # 74 and 218 only, fewer steps
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_string("output_dir", os.path.join(ROOT, "docs", "benchmarks"),
                    "Where the JSON and the plot go.")
flags.DEFINE_string("markdown", os.path.join(ROOT, "BENCHMARKS.md"), "The report to write.")
flags.DEFINE_bool("quick", False, "Depths 74 and 218 only, 3 throughput steps, no inference.")
flags.DEFINE_integer("throughput_steps", 8, "Timed training steps per throughput figure.")
flags.DEFINE_bool("peer", None, "Compare ResNet-32 with PyTorch eager (zoo.research.torch_peer; needs "
                  "pip install \".[peer]\"). Default: when torch is installed, except --quick.")
flags.DEFINE_bool("threads_only", False,
                  "Only the thread-pool sweep of the training throughput: writes "
                  "threading.md and threading.json into --output_dir.")


def main(argv):
    from zoo.research import benchmarks

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.threads_only:
        rows = (benchmarks.threading_sweep(reversible=False, steps=FLAGS.throughput_steps)
                + benchmarks.threading_sweep(reversible=True, steps=FLAGS.throughput_steps,
                                             settings=benchmarks.THREAD_SETTINGS[:3]))
        machine = benchmarks.machine()
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        with open(os.path.join(FLAGS.output_dir, "threading.json"), "w") as f:
            json.dump({"machine": machine, "rows": rows}, f, indent=2)
        command = "python tools/benchmark.py " + " ".join(sys.argv[1:])
        with open(os.path.join(FLAGS.output_dir, "threading.md"), "w") as f:
            f.write(benchmarks.threading_markdown(rows, machine, command))
        return
    kwargs = {"throughput_steps": FLAGS.throughput_steps, "peer": FLAGS.peer}
    if FLAGS.quick:
        kwargs = {"depth_models": benchmarks.DEPTHS[:2], "throughput_steps": 3,
                  "inference_model": None, "peer": bool(FLAGS.peer)}
    results = benchmarks.run_all(**kwargs)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "benchmarks.json"), "w") as f:
        json.dump(results, f, indent=2)
    plots = benchmarks.plot(results, FLAGS.output_dir)
    command = "python tools/benchmark.py " + " ".join(sys.argv[1:])
    with open(FLAGS.markdown, "w") as f:
        f.write(benchmarks.markdown(results, command, plots,
                                    os.path.join(FLAGS.output_dir, "benchmarks.json")))
    for name, value, target, met in benchmarks.goals(results):
        print(f"{name}: {value:.2f} (target {target}) {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("benchmark.py", main, argv))
