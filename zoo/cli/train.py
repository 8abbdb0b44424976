r"""Train a zoo model.

    {prog} --model hamiltonian-74 --dataset cifar10 --data_dir ../shared/data \
        --recipe cpu --output_dir runs/ham74-cpu

Run the same command again to resume an interrupted run. The work is done by
zoo.training.train; --progress sets Keras' progress output (0 none, 1 a bar,
2 a line per epoch), --verbose shows TensorFlow's start-up messages.
"""

from absl import app, flags, logging

from zoo import cli  # noqa: E402  (the package, for its shared flags)

FLAGS = flags.FLAGS

# TrainConfig fields that are flags of the same name.
CONFIG_FLAGS = (
    "model", "output_dir", "dataset", "data_dir", "recipe", "batch_size", "epochs", "steps",
    "learning_rate", "weight_decay", "smoothness_decay", "mixed_precision", "reversible",
    "label_smoothing", "ema_decay", "warm_start", "holdout", "control_points", "seed",
    "fraction", "limit_train", "limit_eval", "validation_freq", "checkpoint_every", "strategy",
    "deterministic", "skip_unreadable")


def define_flags():
    from zoo.training.config import RECIPES

    cli.define_verbose_flag(__name__)
    cli.define_progress_flag(__name__, 1)
    flags.DEFINE_string("model", None, "Model name, e.g. hamiltonian-74 or "
                        "hamiltonian-74-cifar10.")
    flags.DEFINE_string("dataset", None, "cifar10, cifar100, stl10, fashion_mnist, any "
                        "tensorflow-datasets name, a .npz file or an image folder. Default: "
                        "the model name's dataset suffix.")
    flags.DEFINE_string("data_dir", None,
                        "Directory with local dataset files (else $ZOO_DATA_DIR).")
    flags.DEFINE_string("output_dir", None, "Where checkpoints, logs and weights go.")
    flags.DEFINE_enum("recipe", "paper", sorted(RECIPES),
                      "Training recipe (zoo.training.RECIPES).")
    flags.DEFINE_integer("batch_size", None, "Global batch size (default: the recipe's).")
    flags.DEFINE_integer("epochs", None, "Epochs to train (default: the recipe's).")
    flags.DEFINE_integer("steps", None, "Steps to train; overrides --epochs.")
    flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: the recipe's).")
    flags.DEFINE_float("weight_decay", None,
                       "SGD weight decay λ: adds (λ/2)Σw² (default: the recipe's).")
    flags.DEFINE_float("smoothness_decay", None,
                       "Weight-smoothness decay, Eq. 22 (default: the recipe's).")
    flags.DEFINE_bool("mixed_precision", None,
                      "mixed_bfloat16 compute (default: the recipe's).")
    flags.DEFINE_bool("reversible", None, "Backprop by reconstruction (False: plain "
                      "autodiff); default: the recipe's.")
    flags.DEFINE_float("label_smoothing", None, "Label smoothing ε of the cross-entropy "
                       "(default: the recipe's).")
    flags.DEFINE_float("ema_decay", None, "Keep an exponential moving average of the weights "
                       "with this decay, saved as ema.weights.h5 (default: the recipe's).")
    flags.DEFINE_string("warm_start", None, "Start from these weights (a .weights.h5 file or "
                        "a pretrained name) with a new schedule.")
    flags.DEFINE_integer("holdout", None, "Validate on this many stratified training images, "
                         "held out of training, instead of the test split.")
    flags.DEFINE_integer("control_points", None, "Weights on their own time grid: at most "
                         "this many weight sets per unit, linearly interpolated (Onken et al.).")
    cli.define_model_args_flag(__name__, "Further builder arguments as a JSON object, e.g. "
                               "'{\"h\": 1.0}' (recorded, and kept by register_checkpoint).")
    flags.DEFINE_integer("seed", 0, "Seed of initialisation, data order and augmentation.")
    flags.DEFINE_float("fraction", 1.0,
                       "Train on this stratified fraction of the training set.")
    flags.DEFINE_integer("limit_train", None, "Use only the first N training examples.")
    flags.DEFINE_integer("limit_eval", None, "Evaluate on only the first N test examples.")
    flags.DEFINE_integer("validation_freq", 1, "Evaluate on the test split every N epochs.")
    flags.DEFINE_integer("checkpoint_every", 500, "Save a resumable checkpoint every N steps.")
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                      "tf.distribute strategy (multi_worker reads TF_CONFIG).")
    flags.DEFINE_bool("deterministic", False, "Enable TensorFlow op determinism.")
    cli.define_skip_unreadable_flag(__name__)


def unexpected_arguments(argv):
    """The usage error for arguments left over after the flags; `--verbose N`
    was Keras' verbosity before --progress took that role."""
    leftover = " ".join(argv[1:])
    hint = (" (--verbose is a switch; Keras' progress output is --progress 0, 1 or 2)"
            if all(arg.isdigit() for arg in argv[1:]) else "")
    return app.UsageError(f"Unexpected arguments: {leftover}{hint}")


def main(argv):
    from zoo import training
    from zoo.errors import UserError

    if len(argv) > 1:
        raise unexpected_arguments(argv)
    for required in ("model", "output_dir"):
        if FLAGS[required].value is None:
            raise app.UsageError(f"--{required} is required.")
    # TensorFlow's checkpoint code logs every save at INFO level.
    logging.set_verbosity(logging.WARNING)
    config = training.TrainConfig(model_args=cli.parse_model_args(FLAGS.model_args),
                                  verbose=FLAGS.progress,
                                  **{name: FLAGS[name].value for name in CONFIG_FLAGS})
    try:
        config.resolved()
    except ValueError as error:  # the configuration itself: a user error
        raise UserError(str(error)) from None
    results = training.train(config)
    test = results["test"]
    print(f"{results['model']} on {results['dataset']}: test accuracy {test['accuracy']:.4f}, "
          f"top-5 {test['top5']:.4f}, loss {test['loss']:.4f} ({results['test_examples']} "
          f"images); outputs in {config.output_dir}")
    return 0
