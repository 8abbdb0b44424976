"""The training campaign: train the plan's runs, across sessions.

    python tools/campaign.py status
    nohup nice -n 19 python tools/campaign.py run --minutes 150 > runs/campaign.log 2>&1 &

`run` resumes the first unfinished run of checkpoints/campaign/plan.json from
its snapshot in checkpoints/in_progress/, trains until the minutes are spent,
snapshots (every 15 minutes and before it exits) and exits; a run that ends is
evaluated, registered and removed from in_progress, and the next one starts.
SIGTERM or Ctrl-C stops it after the current step, with a snapshot. The work is
done by zoo.campaign; this file only reads flags.
"""

import os
import sys

# TensorFlow's start-up messages (CUDA probing, oneDNN notices) are noise in
# a log that should show the runs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_float("minutes", 150, "run: train for this many minutes, then snapshot and exit.")
flags.DEFINE_string("plan", None, "The plan file (default checkpoints/campaign/plan.json).")
flags.DEFINE_string("data_dir", None, "Directory with cifar10.npz etc. (default $ZOO_DATA_DIR, "
                    "then ../shared/data).")
flags.DEFINE_integer("progress", 2, "Keras progress output of the training runs: 0 none, "
                     "1 a bar, 2 a line per epoch.")
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")


def _data_dir():
    if FLAGS.data_dir:
        return FLAGS.data_dir
    if os.environ.get("ZOO_DATA_DIR"):
        return None  # zoo.data reads it
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data")
    return shared if os.path.isdir(shared) else None


def main(argv):
    if len(argv) != 2 or argv[1] not in ("run", "status"):
        raise app.UsageError("Usage: campaign.py status | run [--minutes N]")
    logging.set_verbosity(logging.WARNING)
    from zoo import campaign

    plan = campaign.Campaign(plan_path=FLAGS.plan, data_dir=_data_dir(),
                             log=lambda text: print(text, flush=True))
    if argv[1] == "status":
        rows = plan.status()
        print(campaign.format_status(rows))
        print(f"Training left at the measured speeds (runs in progress): "
              f"{campaign.expected_finish(rows)} h")
        return 0
    finished = plan.run(FLAGS.minutes, verbose=FLAGS.progress)
    print(f"Finished in this call: {', '.join(finished) or 'none'}.")
    print(campaign.format_status(plan.status()))
    return 0


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("campaign.py", main, argv))
