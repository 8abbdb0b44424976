"""Add a trained run to the checkpoint manifest (checkpoints/manifest.json).

    python tools/register_checkpoint.py --name hamiltonian-74-cifar10 \
        --run_dir runs/ham74-cifar10-cpu-14ep --tag cpu14ep --data_dir ../shared/data \
        --record_dir docs/cpu-recipe-hamiltonian-74-14ep \
        --command "python tools/train.py --model hamiltonian-74 ..."

Ships the run's final weights (last.weights.h5: the weights at the end of
training, never an epoch picked on the test set) as
checkpoints/<name>-<tag>.weights.h5, evaluates them in float32 on the whole
test split, measures the training-step memory, records the predictions on
tools/samples and the accuracy on the first 1,000 test images (which the tests
check), and writes the manifest entry (zoo.pretrained.make_entry). Then run
tools/model_cards.py.
"""

import json
import os
import shutil
import sys

# The manifest's training-step memory needs the CPU allocator's statistics,
# which TensorFlow keeps only with the allocator chosen here, before it starts
# (zoo.analysis.ALLOCATOR_STATS_ENV).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("name", None, "Model name with dataset suffix, e.g. resnet-32-cifar10.")
flags.DEFINE_string("run_dir", None, "Output directory of tools/train.py.")
flags.DEFINE_string("weights", None,
                    "Weights file to ship; default <run_dir>/last.weights.h5. A file already "
                    "in checkpoints/ is used in place.")
flags.DEFINE_string("tag", None, "Suffix of the shipped file name, e.g. cpu14ep.")
flags.DEFINE_string("data_dir", None, "Directory holding the dataset (.npz); default $ZOO_DATA_DIR.")
flags.DEFINE_string("record_dir", None,
                    "Where the run's record (results, metrics, curves, evaluation) is kept in "
                    "the repository, e.g. docs/<run>.")
flags.DEFINE_string("command", None, "The training command as it ran.")
flags.DEFINE_string("code_commit", None, "Commit the run started from, if results.json's is wrong.")
flags.DEFINE_string("notes", None, "Anything a user must know (cut schedule, ...).")
flags.DEFINE_string("url", None, "Where the weights can be downloaded, if anywhere.")
flags.DEFINE_string("checkpoints_dir", os.path.join(ROOT, "checkpoints"), "The manifest's directory.")
flags.mark_flags_as_required(["name", "run_dir", "tag"])


def main(argv):
    import keras

    from zoo import data, evaluation, pretrained, registry, training

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    name = FLAGS.name.strip().lower()
    _, dataset = registry.split_name(name)
    with open(os.path.join(FLAGS.run_dir, "results.json")) as f:
        run_record = json.load(f)

    # The network the run trained: its control points and model_args too.
    arguments = training.architecture_args(run_record["config"])
    source = FLAGS.weights or os.path.join(FLAGS.run_dir, "last.weights.h5")
    shipped = os.path.join(FLAGS.checkpoints_dir, f"{name}-{FLAGS.tag}.weights.h5")
    keras.config.set_dtype_policy("float32")
    if os.path.abspath(source) != os.path.abspath(shipped):
        # Saved from the model, not copied: a training run's file may also
        # hold optimizer state, which users do not need.
        registry.build(name, weights=source, **arguments).save_weights(shipped)
        keras.backend.clear_session()
    model = registry.build(name, weights=shipped, **arguments)
    split = data.load(dataset, "test", data_dir=FLAGS.data_dir)
    report = evaluation.evaluate(model, split)
    report["model"], report["weights"] = name, os.path.relpath(shipped, ROOT)
    keras.backend.clear_session()

    record_dir = FLAGS.record_dir
    if record_dir:
        os.makedirs(record_dir, exist_ok=True)
        for file in ("results.json", "config.json", "metrics.csv", "metrics.json", "curves.png"):
            src, dst = os.path.join(FLAGS.run_dir, file), os.path.join(record_dir, file)
            if os.path.exists(src) and not (os.path.exists(dst) and os.path.samefile(src, dst)):
                shutil.copyfile(src, dst)
        evaluation.save_report(report, os.path.join(record_dir, "eval"), prefix=f"{name}_test")

    train_seconds = _train_seconds(os.path.join(FLAGS.run_dir, "metrics.json"))
    entry = pretrained.make_entry(
        name, shipped, run_record, report,
        samples_dir=os.path.join(ROOT, "tools", "samples"), data_dir=FLAGS.data_dir,
        command=FLAGS.command,
        record_dir=os.path.relpath(record_dir, ROOT) if record_dir else None,
        code_commit=FLAGS.code_commit, train_seconds=train_seconds, notes=FLAGS.notes,
        url=FLAGS.url)

    path = os.path.join(FLAGS.checkpoints_dir, pretrained.MANIFEST_NAME)
    manifest = (pretrained.read_manifest(path) if os.path.exists(path)
                else {"format_version": pretrained.FORMAT_VERSION, "checkpoints": {}})
    old = manifest["checkpoints"].get(name)
    if old and old["weights"]["file"] != entry["weights"]["file"]:
        logging.warning("%s replaces %s as %s.", entry["weights"]["file"], old["weights"]["file"],
                        name)
    manifest["checkpoints"][name] = entry
    pretrained.write_manifest(manifest, path)
    print(f"{name}: top-1 {entry['metrics']['top1']:.4f}, top-5 {entry['metrics']['top5']:.4f} "
          f"on {entry['metrics']['images']} test images; {entry['weights']['file']} "
          f"sha256 {entry['weights']['sha256'][:12]}...; manifest {path}")


def _train_seconds(metrics_path):
    """Sum of the epochs' seconds (training and per-epoch evaluation)."""
    if not os.path.exists(metrics_path):
        return None
    with open(metrics_path) as f:
        rows = json.load(f)
    return round(sum(row["seconds"] for row in rows), 1)


if __name__ == "__main__":
    app.run(main)
