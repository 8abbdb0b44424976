"""Evaluate a zoo model on a dataset split: accuracy, loss, confusion matrix.

    {prog} --model hamiltonian-74-cifar10
    {prog} --model hamiltonian-74-cifar10 --weights my.weights.h5 --limit 1000
    {prog} --finetuned runs/ft --dataset my_images/

Writes <output_dir>/<model>_<dataset>_<split>.json and two PNG figures
(confusion matrix, per-class accuracy); see zoo.evaluation. Without --weights,
a pretrained name evaluates its shipped weights (zoo.load); --random_weights
evaluates an untrained network instead. Single-crop top-1 is the headline; the
top-1 with flip test-time augmentation is reported beside it, labelled.
"""

import os

from absl import app, flags

from zoo import cli  # noqa: E402  (the package, for its shared flags)
from zoo import pretrained
from zoo.cli.predict import define_model_args_flag

FLAGS = flags.FLAGS


def define_flags():
    cli.define_verbose_flag(__name__)
    flags.DEFINE_string("model", None, "Model name, e.g. hamiltonian-74-cifar10.")
    flags.DEFINE_string("finetuned", None, "A fine-tuning output directory: evaluate the "
                        "fine-tuned model its card describes on --dataset (instead of --model).")
    flags.DEFINE_string("weights", None, "Keras weights file (.weights.h5) to load.")
    define_model_args_flag(__name__)
    flags.DEFINE_string("dataset", None,
                        "Dataset name or path (.npz or image folder); default: the model "
                        "name's dataset suffix.")
    flags.DEFINE_string("data_dir", None,
                        "Directory holding <dataset>.npz; default $ZOO_DATA_DIR.")
    flags.DEFINE_string("split", "test", "Dataset split to evaluate.")
    flags.DEFINE_integer("batch_size", 100, "Examples per forward pass.", lower_bound=1)
    flags.DEFINE_integer("limit", None, "Evaluate only the first N examples.", lower_bound=1)
    flags.DEFINE_string("output_dir", "eval", "Where to write the report and figures.")
    flags.DEFINE_bool("random_weights", False, "Evaluate an untrained network (random "
                      "weights) instead of the pretrained one.")
    flags.DEFINE_bool("flip_tta", True, "Also report top-1 with flip test-time augmentation "
                      "(a second, labelled figure; doubles the time).")
    cli.define_skip_unreadable_flag(__name__)


def main(argv):
    from zoo import data, evaluation, registry
    from zoo.cli.predict import check_model_flags, load_model, recorded_model_args

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model and not FLAGS.finetuned:
        raise app.UsageError("Give --model (or --finetuned with a fine-tuning output "
                             "directory).")
    if FLAGS.finetuned and not FLAGS.dataset:
        raise app.UsageError("--finetuned needs --dataset: the data to evaluate it on.")
    check_model_flags(FLAGS.model, FLAGS.weights, FLAGS.finetuned, FLAGS.random_weights)
    model_args = cli.parse_model_args(FLAGS.model_args)
    if model_args is None and FLAGS.weights and not FLAGS.finetuned:
        model_args = recorded_model_args(FLAGS.model, FLAGS.weights)
    if FLAGS.finetuned:
        card = pretrained.read_card(FLAGS.finetuned)
        name = card.get("name") or os.path.basename(os.path.normpath(FLAGS.finetuned))
        dataset = FLAGS.dataset
    else:
        try:
            _, suffix = registry.split_name(FLAGS.model)
        except ValueError as error:
            raise app.UsageError(str(error))
        dataset = FLAGS.dataset or suffix
        if dataset is None:
            raise app.UsageError(f"--model {FLAGS.model} has no dataset suffix; give --dataset.")
        name = FLAGS.model

    # The data first: a missing dataset is reported before a model is built.
    split = data.load(dataset, FLAGS.split, data_dir=FLAGS.data_dir,
                      skip_unreadable=FLAGS.skip_unreadable)
    model, _ = load_model(FLAGS.model, FLAGS.weights, FLAGS.finetuned, FLAGS.random_weights,
                          model_args=model_args)
    if FLAGS.finetuned:
        # Converted as fine-tuning converted its data (channels, size).
        split, _ = data.prepare_split(split, card["input"]["shape"])
        weights = os.path.abspath(os.path.join(FLAGS.finetuned, card["weights"]["file"]))
    elif FLAGS.weights:
        weights = os.path.abspath(FLAGS.weights)
    elif FLAGS.random_weights:
        weights = None
    else:
        import zoo

        weights = zoo.info(FLAGS.model)["weights"]["file"]
    report = evaluation.evaluate(model, split, batch_size=FLAGS.batch_size,
                                 limit=FLAGS.limit, flip_tta=FLAGS.flip_tta)
    report = {**report, "model": name, "weights": weights}
    if model_args:
        report["model_args"] = model_args
    paths = evaluation.save_report(report, FLAGS.output_dir,
                                   prefix=f"{name}_{split.name}_{split.split}")
    untrained = "  (UNTRAINED: random weights)" if FLAGS.random_weights else ""
    print(f"{name} on {split.name} {split.split}{untrained}")
    print(f"  examples: {report['num_examples']}")
    if model_args:
        print(f"  built with: {cli.describe_model_args(model_args)}")
    print(f"  top-1:    {report['top1']:.4f}")
    if report["top5_k"] < len(report["label_names"]):
        print(f"  top-{report['top5_k']}:    {report['top5']:.4f}")
    print(f"  loss:     {report['loss']:.4f}")
    if "flip_tta" in report:
        print(f"  top-1 with flip TTA (not the headline): {report['flip_tta']['top1']:.4f}")
    for path in paths.values():
        print(f"  wrote {path}")
    return 0
