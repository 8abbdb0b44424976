"""Accuracy and parameter count against the number of weight control points M
(weights on their own time grid, Onken et al.).

    python tools/control_points.py --model second-order-cifar10 --data_dir ../shared/data \
        --control_points 3,2,1 --epochs 3 --fraction 0.4 --output_dir runs/time-grid \
        --table docs/time_grid.md
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "second-order-cifar10", "Model name.")
flags.DEFINE_string("dataset", None, "Dataset (default: the model name's suffix).")
flags.DEFINE_string("data_dir", None, "Directory with local dataset files.")
flags.DEFINE_list("control_points", ["3", "2", "1"], "Values of M ('all' for one per step).")
flags.DEFINE_string("recipe", "cpu", "Training recipe.")
flags.DEFINE_integer("epochs", 3, "Epochs per run.")
flags.DEFINE_float("fraction", 1.0, "Stratified fraction of the training set.")
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_string("output_dir", "runs/time-grid", "Parent directory of the runs.")
flags.DEFINE_string("table", "docs/time_grid.md", "Markdown table to write.")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from zoo import experiments, training

    config = training.TrainConfig(
        model=FLAGS.model, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, recipe=FLAGS.recipe,
        epochs=FLAGS.epochs, fraction=FLAGS.fraction, seed=FLAGS.seed,
        output_dir=FLAGS.output_dir, verbose=2)
    values = [None if m == "all" else int(m) for m in FLAGS.control_points]
    rows = experiments.control_point_sweep(config, values)
    experiments.write_control_point_table(rows, config, FLAGS.table)
    print(open(FLAGS.table).read())


if __name__ == "__main__":
    app.run(main)
