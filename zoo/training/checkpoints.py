"""Resumable runs between sessions and machines: a snapshot holds what
resuming needs (configuration, metrics, the latest checkpoint) and nothing
else."""

import os
import shutil

import tensorflow as tf

from zoo.files import atomic_write


SNAPSHOT_FILES = ("config.json", "metrics.csv", "metrics.json")


def has_checkpoint_entry(path, name):
    """Whether the checkpoint at `path` holds the top-level entry `name`
    (runs checkpointed before an entry was added lack it)."""
    return any(key.split("/")[0] == name for key, _ in tf.train.list_variables(path))


def snapshot_run(run_dir, destination):
    """Copies what resuming `run_dir` needs into `destination`: its
    configuration, per-epoch metrics and latest resumable checkpoint (weights,
    optimizer state and position in the data order), but no weights files or
    logs. `train.py --output_dir <a copy of destination>` with the run's flags
    continues it, on another machine or in a later session, to the same
    weights as an uninterrupted run.
    """
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if latest is None:
        raise FileNotFoundError(f"{run_dir} has no resumable checkpoint.")
    os.makedirs(os.path.join(destination, "checkpoints"), exist_ok=True)
    for name in SNAPSHOT_FILES:
        if os.path.exists(os.path.join(run_dir, name)):
            shutil.copy2(os.path.join(run_dir, name), os.path.join(destination, name))
    prefix = os.path.basename(latest)
    for name in os.listdir(os.path.dirname(latest)):
        if name.startswith(prefix + "."):
            shutil.copy2(os.path.join(os.path.dirname(latest), name),
                         os.path.join(destination, "checkpoints", name))
    # An index naming only the copied checkpoint, so that the manager finds
    # no missing older ones.
    atomic_write(os.path.join(destination, "checkpoints", "checkpoint"),
                 f'model_checkpoint_path: "{prefix}"\nall_model_checkpoint_paths: "{prefix}"\n')
    return os.path.join(destination, "checkpoints", prefix)
