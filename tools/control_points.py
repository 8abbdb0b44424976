"""Accuracy and parameter count against the number of weight control points M
(weights on their own time grid, Onken et al.).

    python tools/control_points.py --model second-order-cifar10 --data_dir ../shared/data \
        --control_points 3,2,1 --epochs 2 --fraction 0.4 --output_dir runs/time-grid

writes docs/time_grid/<model>.md and .json (see docs/time_grid/README.md). On a
CPU without native bfloat16 add --nomixed_precision: the `cpu` recipe's
mixed_bfloat16 runs emulated there, many times slower than float32.
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
flags.DEFINE_string("model", "second-order-cifar10", "Model name.")
flags.DEFINE_string("dataset", None, "Dataset (default: the model name's suffix).")
flags.DEFINE_string("data_dir", None, "Directory with local dataset files.")
flags.DEFINE_list("control_points", ["3", "2", "1"], "Values of M ('all' for one per step).")
flags.DEFINE_string("recipe", "cpu", "Training recipe.")
flags.DEFINE_integer("epochs", 3, "Epochs per run.")
flags.DEFINE_bool("mixed_precision", None, "mixed_bfloat16 compute (default: the recipe's).")
flags.DEFINE_bool("reversible", None, "Reversible engine (default: the recipe's).")
flags.DEFINE_float("fraction", 1.0, "Stratified fraction of the training set.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("output_dir", "runs/time-grid", "Parent directory of the runs.")
flags.DEFINE_string("table", None, "Markdown table to write (default: docs/time_grid/<model>.md).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from zoo import training
    from zoo.research import experiments

    config = training.TrainConfig(
        model=FLAGS.model, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, recipe=FLAGS.recipe,
        epochs=FLAGS.epochs, fraction=FLAGS.fraction,
        mixed_precision=FLAGS.mixed_precision, reversible=FLAGS.reversible, seed=FLAGS.seed,
        output_dir=FLAGS.output_dir, verbose=2)
    values = [None if m == "all" else int(m) for m in FLAGS.control_points]
    rows = experiments.control_point_sweep(config, values)
    table = FLAGS.table or os.path.join("docs", "time_grid", f"{FLAGS.model}.md")
    experiments.write_control_point_table(rows, config, table)
    print(open(table).read())


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("control_points.py", main, argv))
