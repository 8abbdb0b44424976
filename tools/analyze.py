"""Stability analysis of the blocks: Jacobian spectra, perturbation and gradient
growth with depth, reconstruction drift by dtype (zoo.research.analysis).

    python tools/analyze.py --output_dir docs/analysis
    python tools/analyze.py --output_dir docs/analysis --trained hamiltonian-74-cifar10

Writes stability.json, spectrum.png, growth.png, drift.png and README.md.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_string("output_dir", "docs/analysis", "Where to write the report.")
flags.DEFINE_string("trained", "hamiltonian-74-cifar10",
                    "Pretrained model whose units are analysed too ('' for none).")
flags.DEFINE_integer("depth", 32, "Blocks of the freshly initialised units.", lower_bound=1)
flags.DEFINE_integer("channels", 16, "Channels of the freshly initialised units.", lower_bound=2)
flags.DEFINE_integer("seed", 0, "Seed.")


def main(argv):
    import zoo
    from zoo.research import analysis

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    trained = zoo.load(FLAGS.trained) if FLAGS.trained else None
    report = analysis.stability_report(trained=trained, depth=FLAGS.depth,
                                       channels=FLAGS.channels, seed=FLAGS.seed)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    with open(os.path.join(FLAGS.output_dir, "stability.json"), "w") as f:
        json.dump(report, f)
    paths = analysis.plot_stability_report(report, FLAGS.output_dir)
    command = "python tools/analyze.py " + " ".join(argv[1:] or sys.argv[1:])
    with open(os.path.join(FLAGS.output_dir, "README.md"), "w") as f:
        f.write(analysis.stability_markdown(report, command.strip()))
    print(f"Wrote {FLAGS.output_dir}/: stability.json, README.md, "
          + ", ".join(os.path.basename(p) for p in paths.values()))


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("analyze.py", main, argv))
