r"""Fine-tune a pretrained zoo model on another dataset (or train it from scratch).

    {prog} --model hamiltonian-74-cifar10 \
        --dataset ../shared/data/cifar100_partial.npz --output_dir runs/ft-cifar100
    {prog} --model hamiltonian-74-cifar10 --dataset my_images/ --output_dir runs/ft
    {prog} --model hamiltonian-74-cifar10 \
        --dataset ../shared/data/cifar100_partial.npz --from_scratch --output_dir runs/scratch

Writes finetuned.weights.h5, model_card.json/.md, metrics per epoch,
results.json and the test report into --output_dir; `zoo predict --finetuned
DIR` and `zoo evaluate --finetuned DIR` use it, as does
zoo.pretrained.load_finetuned(DIR) in Python. The work and the defaults are in
zoo.training.finetune.
"""

import shlex
import sys

from absl import app, flags, logging

from zoo import cli  # noqa: E402  (the package, for its shared flags)

FLAGS = flags.FLAGS

# Flags passed on only when given, so that the library's defaults apply.
OPTIONAL = ("head_epochs", "epochs", "head_learning_rate", "learning_rate", "batch_size",
            "weight_decay", "smoothness_decay")


def define_flags():
    cli.define_verbose_flag(__name__)
    cli.define_progress_flag(__name__, 2)
    flags.DEFINE_string("model", None, "Pretrained model name, e.g. hamiltonian-74-cifar10 "
                        "(zoo list --pretrained).")
    flags.DEFINE_string("dataset", None, "Dataset to fine-tune on: a tensorflow-datasets "
                        "name, a .npz file (x_train, y_train, x_test, y_test) or an image "
                        "folder with one sub-folder per class.")
    flags.DEFINE_string("test_dataset", None, "Dataset whose test split is evaluated "
                        "(default: --dataset's test split, or 10% held out of its training "
                        "images).")
    flags.DEFINE_string("data_dir", None,
                        "Directory with local dataset files (else $ZOO_DATA_DIR).")
    flags.DEFINE_string("output_dir", None, "Where weights, model card and metrics go.")
    flags.DEFINE_integer("head_epochs", None, "Epochs training only the new classifier "
                         "(default: zoo.training.finetune.HEAD_EPOCHS).", lower_bound=0)
    flags.DEFINE_integer("epochs", None, "Epochs training all layers after that (default: "
                         "zoo.training.finetune.EPOCHS). From scratch: head_epochs + epochs in all.",
                         lower_bound=0)
    flags.DEFINE_float("head_learning_rate", None, "Peak learning rate of the classifier-only "
                       "phase (default: zoo.training.finetune.HEAD_LEARNING_RATE).")
    flags.DEFINE_float("learning_rate", None, "Peak learning rate when all layers train "
                       "(default 0.01 fine-tuning, 0.1 from scratch).")
    flags.DEFINE_integer("batch_size", None, "Batch size (default: zoo.training.finetune.BATCH_SIZE).",
                         lower_bound=1)
    flags.DEFINE_float("weight_decay", None,
                       "SGD weight decay (default: the one the parent checkpoint was trained "
                       "with).")
    flags.DEFINE_float("smoothness_decay", None,
                       "Weight-smoothness decay of Eq. 22 between neighbouring blocks' "
                       "kernels (default: the one the parent checkpoint was trained with).")
    flags.DEFINE_integer("seed", 0, "Seed of the new classifier (or of the whole network "
                         "from scratch), data order and augmentation.")
    flags.DEFINE_bool("mixed_precision", False,
                      "Train in mixed_bfloat16 (evaluation is float32).")
    flags.DEFINE_bool("from_scratch", False, "Same architecture and classifier from a random "
                      "initialisation, all layers for head_epochs + epochs epochs: the "
                      "comparison.")
    flags.DEFINE_bool("reversible", False, "Backpropagate through the units by "
                      "reconstruction (less memory, slower on CPU).")
    flags.DEFINE_integer("validation_freq", 1, "Evaluate the test split every N epochs for "
                         "the curves (0: only at the end).", lower_bound=0)
    flags.DEFINE_bool("overwrite", False,
                      "Replace a fine-tuned model already in --output_dir.")
    cli.define_skip_unreadable_flag(__name__)


def main(argv):
    from zoo.training import finetune
    from zoo.cli.train import unexpected_arguments

    if len(argv) > 1:
        raise unexpected_arguments(argv)
    for required in ("model", "dataset", "output_dir"):
        if FLAGS[required].value is None:
            raise app.UsageError(f"--{required} is required.")
    logging.set_verbosity(logging.WARNING)
    options = {name: FLAGS[name].value for name in OPTIONAL if FLAGS[name].value is not None}
    result = finetune.finetune(
        FLAGS.model, FLAGS.dataset, FLAGS.test_dataset, data_dir=FLAGS.data_dir,
        output_dir=FLAGS.output_dir, seed=FLAGS.seed, mixed_precision=FLAGS.mixed_precision,
        from_scratch=FLAGS.from_scratch, reversible=FLAGS.reversible,
        validation_freq=FLAGS.validation_freq, overwrite=FLAGS.overwrite,
        verbose=FLAGS.progress, skip_unreadable=FLAGS.skip_unreadable,
        command=shlex.join(["python", *sys.argv]) if sys.argv[0].endswith(".py")
        else shlex.join(sys.argv), **options)
    card, metrics = result.card, result.card["metrics"]
    top_k = (f"top-{metrics['top5_k']} {metrics['top5']:.4f}, "
             if metrics["top5_k"] < len(card["labels"]) else "")
    print(f"{card['name']}: {metrics['split']} top-1 {metrics['top1']:.4f}, {top_k}"
          f"loss {metrics['loss']:.4f} ({metrics['images']} images; parent "
          f"{card['parent']['name']} sha256 {card['parent']['weights']['sha256'][:12]}); "
          f"outputs in {FLAGS.output_dir}")
    return 0
