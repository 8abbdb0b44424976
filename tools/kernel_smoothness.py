"""How far apart the kernels of neighbouring blocks are, and how hard weight
decay and the smoothness term of Eq. 22 pull on them (zoo.research.analysis).

    python tools/kernel_smoothness.py --model hamiltonian-74-cifar10 \\
        --weight_decay 2e-4 --smoothness_decay 2e-4

Prints, per stacked kernel, ||K_{j+1} - K_j|| / ||K_j|| (min, mean, max; about
1.41 for independent kernels), and the norms over all stacked kernels of the
gradients of the cross-entropy (mean over batches of training images, no
augmentation, training mode), of weight decay and of the smoothness term, at
the model's weights in float32, with the coefficients given.
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
flags.DEFINE_string("model", None, "Registered model name, e.g. hamiltonian-74-cifar10.")
flags.DEFINE_string("weights", None,
                    "A .weights.h5 file of that model (default: its shipped checkpoint), built "
                    "with the arguments its training run recorded beside it.")
flags.DEFINE_float("weight_decay", 2e-4, "Weight decay coefficient.", lower_bound=0)
flags.DEFINE_float("smoothness_decay", 2e-4, "Smoothness decay coefficient (Eq. 22).",
                   lower_bound=0)
flags.DEFINE_integer("images", 1024, "Training images for the cross-entropy's gradient.",
                     lower_bound=1)
flags.DEFINE_string("dataset", None, "Where the training images come from: a dataset name, "
                    "a .npz file or an image folder (default: the model name's dataset).")
flags.DEFINE_string("data_dir", None, "Directory with local dataset files such as cifar10.npz "
                    "(default $ZOO_DATA_DIR, then ../shared/data).")
flags.DEFINE_string("json", None, "Also write the report to this file.")
flags.mark_flag_as_required("model")


def main(argv):
    from zoo import cli, data, registry
    from zoo.cli.predict import load_model, recorded_model_args
    from zoo.research import analysis

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    _, dataset = registry.split_name(FLAGS.model)
    # A training run's weights are built as its config.json records (its step
    # size h, say): the cross-entropy's gradient depends on them.
    model_args = recorded_model_args(FLAGS.model, FLAGS.weights) if FLAGS.weights else None
    model, _ = load_model(FLAGS.model, FLAGS.weights, model_args=model_args)
    split = data.load(FLAGS.dataset or dataset, "train", data_dir=FLAGS.data_dir)
    report = analysis.smoothness_report(model, split.images[:FLAGS.images],
                                        split.labels[:FLAGS.images], FLAGS.weight_decay,
                                        FLAGS.smoothness_decay)
    report["weights"] = FLAGS.weights or "shipped"
    if model_args:
        report["model_args"] = model_args
        print(f"built with: {cli.describe_model_args(model_args)}")
    for name, d in report["kernel_drift"].items():
        print(f"{name}: ||K_j+1 - K_j|| / ||K_j|| {d['min']:.2f} to {d['max']:.2f} "
              f"(mean {d['mean']:.2f})")
    g = report["gradient_norms"]
    print(f"gradient norms on the stacked kernels over {report['images']} images: cross-entropy "
          f"{g['data']:.4g}, weight decay {g['weight_decay']:.4g}, smoothness {g['smoothness']:.4g}")
    if FLAGS.json:
        with open(FLAGS.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("kernel_smoothness.py", main, argv))
