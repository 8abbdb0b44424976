"""Export pretrained zoo models as SavedModels for TF Serving and TF Hub.

    {prog} --model hamiltonian-74-cifar10 --export_dir exports --version 1
    {prog} --export_dir exports --models_config

Writes exports/<model>/<version>/ (saved_model.pb, variables/, assets.extra/
with the model card and TF Serving warm-up requests); see zoo.export. An
existing version is kept unless --overwrite is given. --models_config writes
the models.config that lists every model exported there.
"""

import os

from absl import app, flags, logging

from zoo import cli  # noqa: E402  (the package, for its shared flags)

FLAGS = flags.FLAGS


def define_flags():
    cli.define_verbose_flag(__name__)
    flags.DEFINE_multi_string("model", [], "Pretrained model name(s) to export (zoo.load).")
    flags.DEFINE_string("export_dir", "exports",
                        "Base directory: <export_dir>/<model>/<version>/.")
    flags.DEFINE_integer("version", 1, "Version directory (a positive integer).", lower_bound=1)
    flags.DEFINE_integer("top_k", 5, "Classes returned per image.", lower_bound=1)
    flags.DEFINE_bool("overwrite", False, "Replace an existing version.")
    flags.DEFINE_bool("models_config", False,
                      "Write <export_dir>/models.config listing every model exported there.")
    flags.DEFINE_string("serving_base_path", "/models",
                        "Where the model server sees export_dir (the container's mount point).")


def main(argv):
    import zoo
    from zoo import export
    from zoo.errors import UserError

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model and not FLAGS.models_config:
        raise app.UsageError("Give --model (one or more) and/or --models_config.")
    logging.set_verbosity(logging.WARNING)
    for name in FLAGS.model:
        try:
            zoo.info(name)
        except ValueError as error:
            raise UserError(str(error)) from None
    for name in FLAGS.model:
        path = export.export_pretrained(name, FLAGS.export_dir, FLAGS.version,
                                        top_k=FLAGS.top_k, overwrite=FLAGS.overwrite)
        print(f"Exported {name} to {path}")
    if FLAGS.models_config:
        names = sorted(export.exported_models(FLAGS.export_dir))
        if not names:
            raise UserError(f"No exported model under {FLAGS.export_dir}.")
        path = os.path.join(FLAGS.export_dir, "models.config")
        with open(path, "w") as f:
            f.write(export.models_config(names, FLAGS.serving_base_path))
        print(f"Wrote {path} ({', '.join(names)})")
    return 0
