"""Evaluate a zoo model on a dataset split: accuracy, loss, confusion matrix.

    python tools/evaluate.py --model hamiltonian-74-cifar10     # the shipped checkpoint
    python tools/evaluate.py --model hamiltonian-74-cifar10 --weights my.weights.h5
    python tools/evaluate.py --model hamiltonian-74-cifar10 --weights my.weights.h5 \
        --dataset ../shared/data/cifar10.npz --limit 1000 --output_dir eval

Writes <output_dir>/<model>_<dataset>_<split>.json and two PNG figures
(confusion matrix, per-class accuracy); see zoo.evaluation. Without --weights,
a pretrained name evaluates its shipped weights (zoo.load); --random_weights
evaluates an untrained network instead. Single-crop top-1 is the headline; the
top-1 with flip test-time augmentation is reported beside it, labelled.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_string("model", None, "Model name, e.g. hamiltonian-74-cifar10.")
flags.DEFINE_string("finetuned", None, "A tools/finetune.py output directory: evaluate the "
                    "fine-tuned model its card describes on --dataset (instead of --model).")
flags.DEFINE_string("weights", None, "Keras weights file (.weights.h5) to load.")
flags.DEFINE_string("dataset", None,
                    "Dataset name or path (.npz or image folder); default: the model name's "
                    "dataset suffix.")
flags.DEFINE_string("data_dir", None, "Directory holding <dataset>.npz; default $ZOO_DATA_DIR.")
flags.DEFINE_string("split", "test", "Dataset split to evaluate.")
flags.DEFINE_integer("batch_size", 100, "Examples per forward pass.", lower_bound=1)
flags.DEFINE_integer("limit", None, "Evaluate only the first N examples.", lower_bound=1)
flags.DEFINE_string("output_dir", "eval", "Where to write the report and figures.")
flags.DEFINE_bool("random_weights", False, "Evaluate an untrained network (random weights) "
                  "instead of the pretrained one.")
flags.DEFINE_bool("flip_tta", True, "Also report top-1 with flip test-time augmentation "
                  "(a second, labelled figure; doubles the time).")
flags.register_validator(
    "model", lambda value: value is not None or FLAGS.finetuned is not None,
    message="Give --model (or --finetuned with a fine-tuning output directory).")


def main(argv):
    import zoo
    from zoo import data, evaluation, registry

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.finetuned:
        return _evaluate_finetuned()
    try:
        _, suffix = registry.split_name(FLAGS.model)
    except ValueError as error:
        raise app.UsageError(str(error))
    dataset = FLAGS.dataset or suffix
    if dataset is None:
        raise app.UsageError(
            f"--model {FLAGS.model} has no dataset suffix; give --dataset.")
    if FLAGS.weights and FLAGS.random_weights:
        raise app.UsageError("Give --weights or --random_weights, not both.")
    if FLAGS.weights is not None and not os.path.isfile(FLAGS.weights):
        raise app.UsageError(f"--weights {FLAGS.weights}: no such file.")
    pretrained = not FLAGS.weights and not FLAGS.random_weights
    if pretrained and FLAGS.model.strip().lower() not in zoo.list_models(pretrained=True):
        raise app.UsageError(
            f"{FLAGS.model} has no pretrained checkpoint (zoo.list_models(pretrained=True)); "
            "give --weights, or --random_weights to evaluate an untrained network.")

    # A missing dataset or data that does not fit the model is a user error:
    # runtime.run_tool prints it on one line and exits with status 2.
    split = data.load(dataset, FLAGS.split, data_dir=FLAGS.data_dir)
    if pretrained:
        model = zoo.load(FLAGS.model)
        weights = zoo.info(FLAGS.model)["weights"]["file"]
    else:
        model = zoo.build(FLAGS.model, weights=FLAGS.weights)
        weights = os.path.abspath(FLAGS.weights) if FLAGS.weights else None
    report = evaluation.evaluate(model, split, batch_size=FLAGS.batch_size,
                                 limit=FLAGS.limit, flip_tta=FLAGS.flip_tta)
    report = {"model": FLAGS.model, "weights": weights,
              **{k: v for k, v in report.items() if k != "model"}}
    paths = evaluation.save_report(
        report, FLAGS.output_dir, prefix=f"{FLAGS.model}_{split.name}_{split.split}")

    untrained = "  (UNTRAINED: random weights)" if FLAGS.random_weights else ""
    _print(FLAGS.model, split, report, paths, untrained)


def _evaluate_finetuned():
    from zoo import data, evaluation, finetune

    if not FLAGS.dataset:
        raise app.UsageError("--finetuned needs --dataset: the data to evaluate it on.")
    model = finetune.load_finetuned(FLAGS.finetuned)
    card = finetune.read_card(FLAGS.finetuned)
    split = data.load(FLAGS.dataset, FLAGS.split, data_dir=FLAGS.data_dir)
    # Converted as fine-tuning converted its data (channels, size).
    split, _ = finetune.prepare_split(split, card["input"]["shape"])
    report = evaluation.evaluate(model, split, batch_size=FLAGS.batch_size,
                                 limit=FLAGS.limit, flip_tta=FLAGS.flip_tta)
    name = card.get("name") or os.path.basename(os.path.normpath(FLAGS.finetuned))
    report = {**report, "model": name, "weights": os.path.abspath(
        os.path.join(FLAGS.finetuned, card["weights"]["file"]))}
    paths = evaluation.save_report(report, FLAGS.output_dir,
                                   prefix=f"{name}_{split.name}_{split.split}")
    _print(name, split, report, paths)
    return 0


def _print(name, split, report, paths, note=""):
    print(f"{name} on {split.name} {split.split}{note}")
    print(f"  examples: {report['num_examples']}")
    print(f"  top-1:    {report['top1']:.4f}")
    print(f"  top-{report['top5_k']}:    {report['top5']:.4f}")
    print(f"  loss:     {report['loss']:.4f}")
    if "flip_tta" in report:
        print(f"  top-1 with flip TTA (not the headline): {report['flip_tta']['top1']:.4f}")
    for path in paths.values():
        print(f"  wrote {path}")


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("evaluate.py", main, argv))
