"""Classify image files with a zoo model.

    python tools/predict.py --model hamiltonian-74-cifar10 tools/samples   # pretrained (zoo.load)
    python tools/predict.py --model hamiltonian-74-cifar10 --weights my.weights.h5 cat.png
    python tools/predict.py --finetuned runs/ft cat.png          # a tools/finetune.py output

Every readable image is classified; each unreadable one is reported on its own
line (path and reason) and the exit status is 1 if any was.
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
flags.DEFINE_string("model", "hamiltonian-74-cifar10", "Model name with dataset suffix.")
flags.DEFINE_string("weights", None,
                    "Keras weights file (.weights.h5) to load; default: the pretrained "
                    "checkpoint of --model (zoo.load), if there is one.")
flags.DEFINE_string("finetuned", None, "A tools/finetune.py output directory: classify with "
                    "the fine-tuned model its card describes (instead of --model/--weights).")
flags.DEFINE_integer("top", 3, "How many classes to print per image.")


def main(argv):
    import zoo
    from zoo import inference, labels, registry

    if len(argv) < 2:
        raise app.UsageError("Give image files or directories to classify.")
    if FLAGS.finetuned:
        from zoo import finetune

        model = finetune.load_finetuned(FLAGS.finetuned)
        names = finetune.read_card(FLAGS.finetuned)["labels"]
    elif FLAGS.weights is None and FLAGS.model.strip().lower() in zoo.list_models(pretrained=True):
        model = zoo.load(FLAGS.model)
    else:
        finetune_card = os.path.join(os.path.dirname(os.path.abspath(FLAGS.weights or ".")),
                                     "model_card.json")
        if FLAGS.weights and os.path.exists(finetune_card):
            raise app.UsageError(f"{FLAGS.weights} is a fine-tuned model: use --finetuned "
                                 f"{os.path.dirname(FLAGS.weights) or '.'}")
        model = zoo.build(FLAGS.model, weights=FLAGS.weights)
        if FLAGS.weights is None:
            logging.warning(
                "No --weights given and no pretrained checkpoint of %s: its weights are random "
                "and its predictions mean nothing. Train one with tools/train.py.", FLAGS.model)
    if not FLAGS.finetuned:
        names = labels.BY_DATASET.get(registry.split_name(FLAGS.model)[1])
    paths = inference.image_paths(argv[1:])
    images, paths, failures = inference.load_images(paths, model.input_shape[1:3],
                                                    skip_unreadable=True)
    if len(images):
        probabilities = model.predict(images, verbose=0)
        for path, best in zip(paths, inference.top_k(probabilities, names, FLAGS.top)):
            shown = ", ".join(f"{label} {p:.3f}" for _, label, p in best)
            print(f"{os.path.basename(path)}: {shown}")
    for path, reason in failures:
        print(f"ERROR {path}: {reason}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(paths) + len(failures)} images could not be read.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("predict.py", main, argv))
