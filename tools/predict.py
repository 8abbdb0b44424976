"""Classify image files with a zoo model.

    python tools/predict.py --model hamiltonian-74-cifar10 tools/samples   # pretrained (zoo.load)
    python tools/predict.py --model hamiltonian-74-cifar10 --weights my.weights.h5 cat.png
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "hamiltonian-74-cifar10", "Model name with dataset suffix.")
flags.DEFINE_string("weights", None,
                    "Keras weights file (.weights.h5) to load; default: the pretrained "
                    "checkpoint of --model (zoo.load), if there is one.")
flags.DEFINE_integer("top", 3, "How many classes to print per image.")


def main(argv):
    import zoo
    from zoo import inference, labels, registry

    if len(argv) < 2:
        raise app.UsageError("Give image files or directories to classify.")
    _, dataset = registry.split_name(FLAGS.model)
    if FLAGS.weights is None and FLAGS.model.strip().lower() in zoo.list_models(pretrained=True):
        model = zoo.load(FLAGS.model)
    else:
        model = zoo.build(FLAGS.model, weights=FLAGS.weights)
        if FLAGS.weights is None:
            logging.warning(
                "No --weights given and no pretrained checkpoint of %s: its weights are random "
                "and its predictions mean nothing. Train one with tools/train.py.", FLAGS.model)
    names = labels.BY_DATASET.get(dataset)
    paths = inference.image_paths(argv[1:])
    images = inference.load_images(paths, model.input_shape[1:3])
    probabilities = model.predict(images, verbose=0)
    for path, best in zip(paths, inference.top_k(probabilities, names, FLAGS.top)):
        shown = ", ".join(f"{label} {p:.3f}" for _, label, p in best)
        print(f"{os.path.basename(path)}: {shown}")


if __name__ == "__main__":
    app.run(main)
