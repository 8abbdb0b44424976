"""Evaluate a zoo model on a dataset split: accuracy, loss, confusion matrix.

    python tools/evaluate.py --model hamiltonian-74-cifar10 --weights my.weights.h5
    python tools/evaluate.py --model hamiltonian-74-cifar10 --weights my.weights.h5 \
        --dataset ../shared/data/cifar10.npz --limit 1000 --output_dir eval

Writes <output_dir>/<model>_<dataset>_<split>.json and two PNG figures
(confusion matrix, per-class accuracy); see zoo.evaluation.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Model name, e.g. hamiltonian-74-cifar10.")
flags.DEFINE_string("weights", None, "Keras weights file (.weights.h5) to load.")
flags.DEFINE_string("dataset", None,
                    "Dataset name or path (.npz or image folder); default: the model name's "
                    "dataset suffix.")
flags.DEFINE_string("data_dir", None, "Directory holding <dataset>.npz; default $ZOO_DATA_DIR.")
flags.DEFINE_string("split", "test", "Dataset split to evaluate.")
flags.DEFINE_integer("batch_size", 100, "Examples per forward pass.", lower_bound=1)
flags.DEFINE_integer("limit", None, "Evaluate only the first N examples.", lower_bound=1)
flags.DEFINE_string("output_dir", "eval", "Where to write the report and figures.")
flags.mark_flag_as_required("model")


def main(argv):
    import zoo
    from zoo import data, evaluation, registry

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        _, suffix = registry.split_name(FLAGS.model)
    except ValueError as error:
        raise app.UsageError(str(error))
    dataset = FLAGS.dataset or suffix
    if dataset is None:
        raise app.UsageError(
            f"--model {FLAGS.model} has no dataset suffix; give --dataset.")
    if FLAGS.weights is None:
        logging.warning(
            "No --weights given: %s has RANDOM weights and this evaluation measures an "
            "UNTRAINED model. Train one with tools/train.py.", FLAGS.model)
    elif not os.path.isfile(FLAGS.weights):
        raise app.UsageError(f"--weights {FLAGS.weights}: no such file.")

    try:
        split = data.load(dataset, FLAGS.split, data_dir=FLAGS.data_dir)
        model = zoo.build(FLAGS.model, weights=FLAGS.weights)
        report = evaluation.evaluate(
            model, split, batch_size=FLAGS.batch_size, limit=FLAGS.limit)
    except (data.DataNotFoundError, evaluation.EvaluationError) as error:
        sys.exit(f"evaluate.py: error: {error}")
    weights = os.path.abspath(FLAGS.weights) if FLAGS.weights else None
    report = {"model": FLAGS.model, "weights": weights,
              **{k: v for k, v in report.items() if k != "model"}}
    paths = evaluation.save_report(
        report, FLAGS.output_dir, prefix=f"{FLAGS.model}_{split.name}_{split.split}")

    untrained = "" if FLAGS.weights else "  (UNTRAINED: random weights)"
    print(f"{FLAGS.model} on {split.name} {split.split}{untrained}")
    print(f"  examples: {report['num_examples']}")
    print(f"  top-1:    {report['top1']:.4f}")
    print(f"  top-{report['top5_k']}:    {report['top5']:.4f}")
    print(f"  loss:     {report['loss']:.4f}")
    for path in paths.values():
        print(f"  wrote {path}")


if __name__ == "__main__":
    app.run(main)
