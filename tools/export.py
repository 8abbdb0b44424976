"""Export zoo models as SavedModels for TF Serving and TF Hub (see zoo.export).

    python tools/export.py --model hamiltonian-74-cifar10 --export_dir exports --version 1
    python tools/export.py --export_dir exports --models_config   # models.config for all exports

Writes exports/<model>/<version>/ (saved_model.pb, variables/, assets.extra/ with the
model card and TF Serving warm-up requests). An existing version is kept unless
--overwrite is given.
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
flags.DEFINE_multi_string("model", [], "Pretrained model name(s) to export (zoo.load).")
flags.DEFINE_string("export_dir", "exports", "Base directory: <export_dir>/<model>/<version>/.")
flags.DEFINE_integer("version", 1, "Version directory (a positive integer).", lower_bound=1)
flags.DEFINE_integer("top_k", 5, "Classes returned per image.", lower_bound=1)
flags.DEFINE_bool("overwrite", False, "Replace an existing version.")
flags.DEFINE_bool("models_config", False,
                  "Write <export_dir>/models.config listing every model exported there.")
flags.DEFINE_string("serving_base_path", "/models",
                    "Where the model server sees export_dir (the container's mount point).")


def main(argv):
    from zoo import export

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model and not FLAGS.models_config:
        raise app.UsageError("Give --model (one or more) and/or --models_config.")
    logging.set_verbosity(logging.WARNING)
    for name in FLAGS.model:
        path = export.export_pretrained(name, FLAGS.export_dir, FLAGS.version,
                                        top_k=FLAGS.top_k, overwrite=FLAGS.overwrite)
        print(f"Exported {name} to {path}")
    if FLAGS.models_config:
        names = sorted(export.exported_models(FLAGS.export_dir))
        if not names:
            raise app.UsageError(f"No exported model under {FLAGS.export_dir}.")
        path = os.path.join(FLAGS.export_dir, "models.config")
        with open(path, "w") as f:
            f.write(export.models_config(names, FLAGS.serving_base_path))
        print(f"Wrote {path} ({', '.join(names)})")


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("export.py", main, argv))
