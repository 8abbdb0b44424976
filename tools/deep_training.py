"""Trains a very deep network (default Hamiltonian-1202) for a few hundred steps
on real data, logging loss, time and memory of every step, and optionally a
short autodiff run of the same model for the memory comparison.

    python tools/deep_training.py --data_dir ../shared/data \
        --model hamiltonian-1202-cifar10 --steps 200 --batch_size 16 \
        --autodiff_steps 10 --output_dir runs/hamiltonian-1202 \
        --report docs/hamiltonian-1202/training.md

Runs resume from their checkpoints when started again with the same flags.
"""

import os
import sys

# The per-step memory log needs the CPU allocator's statistics, which
# TensorFlow keeps only with the allocator chosen here, before it starts
# (zoo.research.analysis.ALLOCATOR_STATS_ENV).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_string("model", "hamiltonian-1202-cifar10", "Model name.")
flags.DEFINE_string("dataset", None, "Dataset (default: the model name's suffix).")
flags.DEFINE_string("data_dir", None, "Directory with local dataset files (else $ZOO_DATA_DIR).")
flags.DEFINE_string("recipe", "paper", "Training recipe (the paper's: float32, reversible).")
flags.DEFINE_integer("steps", 200, "Steps of the reversible run.")
flags.DEFINE_integer("batch_size", 16, "Batch size.")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: the recipe's).")
flags.DEFINE_integer("autodiff_steps", 10, "Steps of the plain-autodiff comparison (0: none).")
flags.DEFINE_integer("limit_eval", 1000, "Evaluate on the first N test images (None: all).")
flags.DEFINE_integer("checkpoint_every", 25, "Save a resumable checkpoint every N steps.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("output_dir", "runs/hamiltonian-1202", "Parent directory of the runs.")
flags.DEFINE_string("report", "docs/hamiltonian-1202/training.md",
                    "Markdown report to write (with .json and .png beside it).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from zoo import training
    from zoo.research import experiments

    def config(engine, steps):
        return training.TrainConfig(
            model=FLAGS.model, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
            recipe=FLAGS.recipe, steps=steps, batch_size=FLAGS.batch_size,
            learning_rate=FLAGS.learning_rate, reversible=engine == "reversible",
            mixed_precision=False, seed=FLAGS.seed, limit_eval=FLAGS.limit_eval,
            validation_freq=10**9, checkpoint_every=FLAGS.checkpoint_every,
            output_dir=os.path.join(FLAGS.output_dir, engine), verbose=2)

    runs = {"reversible": experiments.deep_training_run(config("reversible", FLAGS.steps))}
    if FLAGS.autodiff_steps:
        runs["autodiff"] = experiments.deep_training_run(config("autodiff", FLAGS.autodiff_steps))
    command = "python tools/deep_training.py " + " ".join(sys.argv[1:])
    experiments.write_deep_training_report(runs, FLAGS.report, command)
    print(open(FLAGS.report).read())


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("deep_training.py", main, argv))
