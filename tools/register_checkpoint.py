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
check), and writes the manifest entry. A checkpoint it replaces under the same
name leaves checkpoints/ (the entry names the commit that last shipped it), unless
the run's top-1 is below that checkpoint's: then it stays (--replace_lower overrides).
The work is done by zoo.publish.registration.register_run. Then run tools/model_cards.py.
"""

import os
import sys

# The manifest's training-step memory needs the CPU allocator's statistics,
# which TensorFlow keeps only with the allocator chosen here, before it starts
# (zoo.research.analysis.ALLOCATOR_STATS_ENV).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
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
flags.DEFINE_bool("replace_lower", False,
                  "Ship the run even if its top-1 is below that of the checkpoint it replaces "
                  "(on the same number of test images); by default that checkpoint stays.")
flags.mark_flags_as_required(["name", "run_dir", "tag"])


def main(argv):
    from zoo.publish import registration

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    entry = registration.register_run(
        FLAGS.name, FLAGS.run_dir, FLAGS.tag, weights=FLAGS.weights, data_dir=FLAGS.data_dir,
        record_dir=FLAGS.record_dir, command=FLAGS.command, code_commit=FLAGS.code_commit,
        notes=FLAGS.notes, url=FLAGS.url, checkpoints_dir=FLAGS.checkpoints_dir,
        replace_lower=FLAGS.replace_lower)
    if not entry["shipped"]:
        print(f"{entry['name']}: not shipped: {entry['reason']}; {entry['kept']['file']} stays "
              "(--replace_lower ships it anyway).")
        return
    superseded = entry.get("supersedes")
    if superseded:
        print(f"Replaces {superseded['file']} (top-1 {superseded['top1']:.4f}), which leaves "
              f"checkpoints/; it was last shipped in commit {superseded['commit']}.")
    print(f"{entry['name']}: top-1 {entry['metrics']['top1']:.4f}, top-5 "
          f"{entry['metrics']['top5']:.4f} on {entry['metrics']['images']} test images; "
          f"{entry['weights']['file']} sha256 {entry['weights']['sha256'][:12]}...")


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("register_checkpoint.py", main, argv))
