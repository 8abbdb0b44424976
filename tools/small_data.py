"""Robustness to small training sets (Chang et al. 2018, Fig. 3): models
trained on stratified shares of CIFAR-10, several seeds, full test set.

    python tools/small_data.py --data_dir ../shared/data \
        --models hamiltonian-74,resnet-32 --fractions 0.01,0.02,0.05,0.1,0.2 \
        --seeds 0,1 --steps 80,100,120,140,160 --learning_rate 0.02 \
        --output_dir runs/small-data-lr0.02 --report docs/small_data/small_data.md

A run already finished in its directory is read back, so an interrupted sweep
continues where it stopped when given the same flags.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_list("models", ["hamiltonian-74", "resnet-32"], "Models to compare.")
flags.DEFINE_string("dataset", "cifar10", "Dataset.")
flags.DEFINE_string("data_dir", None, "Directory with local dataset files (else $ZOO_DATA_DIR).")
flags.DEFINE_list("fractions", ["0.01", "0.02", "0.05", "0.1", "0.2"],
                  "Shares of the training set.")
flags.DEFINE_list("seeds", ["0", "1"], "Seeds (subset, initialisation and data order).")
flags.DEFINE_list("steps", ["80", "100", "120", "140", "160"],
                  "Optimizer steps per run, one per fraction (or one for all).")
flags.DEFINE_string("recipe", "cpu", "Training recipe.")
flags.DEFINE_integer("batch_size", None, "Batch size (default: the recipe's).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: the recipe's).")
flags.DEFINE_integer("limit_eval", None, "Evaluate on only the first N test images.")
flags.DEFINE_string("output_dir", "runs/small-data", "Parent directory of the runs.")
flags.DEFINE_string("report", "docs/small_data/small_data.md",
                    "Markdown report to write (with .json and .png beside it).")
flags.DEFINE_bool("recalibrate_bn", True, "Also evaluate each run after re-estimating its "
                  "batch-norm statistics on its training subset (the report's main figures).")
flags.DEFINE_bool("report_only", False, "Train nothing: write the report from the runs "
                  "already finished in --output_dir (e.g. of a sweep that was stopped).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from zoo import training
    from zoo.research import experiments

    fractions = [float(f) for f in FLAGS.fractions]
    steps = [int(s) for s in FLAGS.steps]
    if len(steps) == 1:
        steps = steps * len(fractions)
    if len(steps) != len(fractions):
        raise app.UsageError(f"--steps needs one value, or one per fraction ({len(fractions)}).")
    config = training.TrainConfig(
        model=FLAGS.models[0], dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
        recipe=FLAGS.recipe, batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate, limit_eval=FLAGS.limit_eval,
        output_dir=FLAGS.output_dir, verbose=0)
    if FLAGS.report_only:
        rows = experiments.collect_small_data_runs(FLAGS.output_dir, FLAGS.recalibrate_bn)
        if not rows:
            raise app.UsageError(f"No finished runs in {FLAGS.output_dir}.")
        config = experiments.finished_run_config(FLAGS.output_dir)
    else:
        rows = experiments.small_data_sweep(
            config, FLAGS.models, fractions, [int(s) for s in FLAGS.seeds],
            steps=dict(zip(fractions, steps)).__getitem__, recalibrate=FLAGS.recalibrate_bn)
    command = "python tools/small_data.py " + " ".join(sys.argv[1:])
    for s in experiments.write_small_data_report(rows, config, FLAGS.report, command):
        print(f"{s['model']:>20} {100 * s['fraction']:5g}%  "
              f"{100 * s['mean_accuracy']:6.2f}% over {s['runs']} seeds")


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("small_data.py", main, argv))
