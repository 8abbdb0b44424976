"""Classify image files with a zoo model.

    {prog} --model hamiltonian-74-cifar10 tools/samples
    {prog} --model hamiltonian-74-cifar10 --weights my.weights.h5 cat.png
    {prog} --finetuned runs/ft cat.png
    {prog} --saved_model exports/hamiltonian-74-cifar10/1 cat.png

A pretrained name uses its shipped checkpoint (zoo.load); --weights loads
another weights file into the same architecture, built with the arguments
its training run recorded (the config.json of a `zoo train` or campaign output
directory beside the file, e.g. another step size h; --model_args gives them
for a file without one); --finetuned takes a
fine-tuning output directory; --saved_model an export of zoo export (its
serving_float signature, as TF Serving would run it). Folders are searched recursively. Images of
another size are resized, grayscale becomes RGB and alpha is dropped. Every
readable image is classified; each unreadable one is reported on its own line
(path and reason) and the exit status is then 1.
"""

import os
import sys

from absl import flags

from zoo import cli  # noqa: E402  (the package, for its shared flags)
from zoo import pretrained

FLAGS = flags.FLAGS


def define_flags():
    cli.define_verbose_flag(__name__)
    flags.DEFINE_string("model", "hamiltonian-74-cifar10", "Model name with dataset suffix.")
    flags.DEFINE_string("weights", None,
                        "Keras weights file (.weights.h5) to load; default: the pretrained "
                        "checkpoint of --model (zoo.load), if there is one.")
    flags.DEFINE_string("finetuned", None,
                        "A fine-tuning output directory: classify with the fine-tuned model "
                        "its card describes (instead of --model/--weights).")
    flags.DEFINE_string("saved_model", None,
                        "A SavedModel version directory written by zoo export: classify with "
                        "its serving signature (instead of --model/--weights).")
    define_model_args_flag(__name__)
    flags.DEFINE_integer("top", 3, "How many classes to print per image.", lower_bound=1)


def define_model_args_flag(module):
    cli.define_model_args_flag(
        module, "Builder arguments of the network behind --weights, as a JSON object "
        "(e.g. '{\"h\": 0.3}'); default: those its training run recorded in the "
        "config.json beside the file, if any.")


def recorded_model_args(model_name, weights):
    """The builder arguments (zoo.training.architecture_args) that the
    training run which wrote `weights` recorded in the config.json beside it,
    or {} where there is no such record. The weights alone do not say them:
    a Hamiltonian-74 trained at h = 0.3 has the shapes of one at h = 0.1 and
    loads into it silently, computing something else."""
    import json

    from zoo import registry, training
    from zoo.errors import UserError

    path = os.path.join(os.path.dirname(os.path.abspath(weights)), "config.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {}
    if not (isinstance(record, dict) and isinstance(record.get("model"), str)
            and "model_args" in record):
        return {}  # not a training run's record
    try:
        trained, _ = registry.split_name(record["model"])
    except ValueError:
        return {}
    wanted, _ = registry.split_name(model_name)
    if trained.name != wanted.name:
        raise UserError(f"{weights} was trained as {record['model']} ({path}), not as "
                        f"{model_name}; give --model {trained.name}-<dataset>.")
    return training.architecture_args(record)


def check_model_flags(model_name, weights=None, finetuned=None, random_weights=False):
    """Raises UserError where the model flags of predict and evaluate cannot
    mean a model; cheap, so that it runs before any data is read."""
    from zoo import registry
    from zoo.errors import UserError

    if finetuned:
        if not os.path.isdir(finetuned):
            raise UserError(f"--finetuned {finetuned}: no such directory.")
        return
    if weights and random_weights:
        raise UserError("Give --weights or --random_weights, not both.")
    if weights is not None:
        if not os.path.isfile(weights):
            raise UserError(f"--weights {weights}: no such file.")
        card = os.path.join(os.path.dirname(os.path.abspath(weights)), "model_card.json")
        if os.path.exists(card):
            raise UserError(f"{weights} is a fine-tuned model: use --finetuned "
                            f"{os.path.dirname(weights) or '.'}")
    try:
        registry.split_name(model_name)
    except ValueError as error:
        raise UserError(str(error)) from None
    if (weights is None and not random_weights
            and not pretrained.has_checkpoint(model_name)):
        refusal = pretrained.preview_refusal(model_name)
        if refusal:
            raise UserError(f"--model {refusal}")
        raise UserError(
            f"{model_name} has no pretrained checkpoint (zoo list --pretrained); give "
            "--weights, or --random_weights for an untrained network.")


def load_model(model_name, weights=None, finetuned=None, random_weights=False,
               model_args=None):
    """(model, label names) as the flags of predict and evaluate ask: a
    fine-tuning output directory, a weights file (built with `model_args`,
    else with the arguments its training run recorded beside it), a pretrained
    name's shipped checkpoint, or (random_weights) an untrained network."""
    import zoo
    from zoo import data, registry
    from zoo.errors import UserError

    check_model_flags(model_name, weights, finetuned, random_weights)
    if finetuned:
        return pretrained.load_finetuned(finetuned), pretrained.read_card(finetuned)["labels"]
    if weights is None and not random_weights:
        if model_args is not None:
            raise UserError(f"--model_args goes with --weights (or --random_weights); "
                            f"{model_name}'s shipped checkpoint is built as its manifest says.")
        return zoo.load(model_name), zoo.info(model_name)["labels"]
    _, dataset = registry.split_name(model_name)
    if model_args is None:
        model_args = recorded_model_args(model_name, weights) if weights else {}
    model = zoo.build(model_name, weights=weights, **model_args)
    return model, (list(data.DATASETS[dataset].labels) if dataset else None)


def main(argv):
    from zoo import inference

    if len(argv) < 2:
        from absl import app

        raise app.UsageError("Give image files or directories to classify.")
    if FLAGS.saved_model:
        model, names = inference.SavedModelClassifier(FLAGS.saved_model), None
    else:
        model, names = load_model(FLAGS.model, FLAGS.weights, FLAGS.finetuned,
                                  model_args=cli.parse_model_args(FLAGS.model_args))
    result = inference.predict_images(model, argv[1:], label_names=names, top=FLAGS.top)
    for source, best in zip(result.sources, result.top):
        shown = ", ".join(f"{label} {p:.3f}" for _, label, p in best)
        print(f"{display_name(source, argv[1:])}: {shown}")
    for path, reason in result.failures:
        print(f"ERROR {path}: {reason}", file=sys.stderr)
    if result.failures:
        total = len(result.sources) + len(result.failures)
        print(f"{len(result.failures)} of {total} images could not be read.", file=sys.stderr)
        return 1
    return 0


def display_name(path, arguments):
    """An image's name as printed: its path under the folder it was found in,
    or the path given."""
    for argument in arguments:
        if os.path.isdir(argument):
            relative = os.path.relpath(path, argument)
            if not relative.startswith(os.pardir):
                return relative
    return path
