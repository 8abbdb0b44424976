"""Registering a trained run as a shipped checkpoint.

`register_run` ships a run's final weights as checkpoints/<name>-<tag>.weights.h5,
evaluates them in float32 on the whole test split, records the predictions on
tools/samples and the accuracy on the first 1,000 test images (which the tests
check), measures the training-step memory and the robustness to corruptions and
attacks (zoo.research.robustness), and writes the manifest entry
(zoo.entries.make_entry). A checkpoint it replaces under the same name leaves
the tree; the new entry names the file and the commit that last shipped it.

The memory figures need the CPU allocator's statistics, which TensorFlow keeps
only with TF_CPU_ALLOCATOR_USE_BFC=true set before it starts:
`register_run_isolated` runs the registration in a fresh process with it.
"""

import json
import os
import shutil
import subprocess
from zoo.publish import entries

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES_DIR = os.path.join(ROOT, "tools", "samples")
RECORD_FILES = ("results.json", "config.json", "metrics.csv", "metrics.json", "curves.png",
                "campaign.json")


def _train_seconds(metrics_path):
    """Sum of the epochs' seconds (training and per-epoch evaluation)."""
    if not os.path.exists(metrics_path):
        return None
    with open(metrics_path) as f:
        rows = json.load(f)
    return round(sum(row["seconds"] for row in rows), 1)


def last_shipped_commit(path, root=ROOT):
    """The newest commit whose tree holds `path` unchanged, or None: HEAD when
    the file is tracked and clean there."""
    rel = os.path.relpath(os.path.abspath(path), root)
    try:
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=root,
                                 capture_output=True, timeout=30).returncode == 0
        if not tracked:
            return None
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=30).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", rel], cwd=root,
                                 capture_output=True, text=True, timeout=30).stdout.strip()
        return None if changed else head or None
    except (OSError, subprocess.SubprocessError):
        return None


def register_run(name, run_dir, tag, *, weights=None, data_dir=None, record_dir=None,
                 command=None, code_commit=None, notes=None, url=None, history=None,
                 checkpoints_dir=None, samples_dir=SAMPLES_DIR, remove_superseded=True,
                 robustness=True):
    """Adds a finished run to the manifest; returns the new entry.

    Args:
      name: model name with dataset suffix, e.g. "resnet-32-cifar10".
      run_dir: the run's output directory (zoo.training.train).
      tag: suffix of the shipped file name.
      weights: the weights file to ship (default <run_dir>/last.weights.h5).
      record_dir: where the run's record (results, metrics, curves,
        evaluation report) is copied in the repository.
      history: the run's training history (segments, warm start), kept in the
        entry under training.history.
      checkpoints_dir: the manifest's directory (default checkpoints/).
      remove_superseded: delete the weights file of the entry this replaces.
      robustness: measure corruption and adversarial robustness
        (zoo.research.robustness, a few minutes) into the entry's "robustness".
    """
    from zoo import precision

    # Everything in float32; the caller's policy comes back afterwards.
    with precision.policy("float32"):
        return _register_run(
            name, run_dir, tag, weights=weights, data_dir=data_dir, record_dir=record_dir,
            command=command, code_commit=code_commit, notes=notes, url=url, history=history,
            checkpoints_dir=checkpoints_dir, samples_dir=samples_dir,
            remove_superseded=remove_superseded, robustness=robustness)


def _register_run(name, run_dir, tag, *, weights, data_dir, record_dir, command, code_commit,
                  notes, url, history, checkpoints_dir, samples_dir, remove_superseded,
                  robustness):
    import keras

    from zoo import data, evaluation, pretrained, registry, training

    checkpoints_dir = checkpoints_dir or os.path.join(ROOT, "checkpoints")
    name = name.strip().lower()
    _, dataset = registry.split_name(name)
    with open(os.path.join(run_dir, "results.json")) as f:
        run_record = json.load(f)

    # The network the run trained: its control points and model_args too.
    arguments = training.architecture_args(run_record["config"])
    source = weights or os.path.join(run_dir, "last.weights.h5")
    shipped = os.path.join(checkpoints_dir, f"{name}-{tag}.weights.h5")
    if os.path.abspath(source) != os.path.abspath(shipped):
        # Saved from the model, not copied: a training run's file may also
        # hold optimizer state, which users do not need.
        registry.build(name, weights=source, **arguments).save_weights(shipped)
        keras.backend.clear_session()
    model = registry.build(name, weights=shipped, **arguments)
    split = data.load(dataset, "test", data_dir=data_dir)
    report = evaluation.evaluate(model, split, flip_tta=True)
    report["model"], report["weights"] = name, os.path.relpath(shipped, ROOT)
    keras.backend.clear_session()

    if record_dir:
        os.makedirs(record_dir, exist_ok=True)
        for file in RECORD_FILES:
            src, dst = os.path.join(run_dir, file), os.path.join(record_dir, file)
            if os.path.exists(src) and not (os.path.exists(dst) and os.path.samefile(src, dst)):
                shutil.copyfile(src, dst)
        evaluation.save_report(report, os.path.join(record_dir, "eval"), prefix=f"{name}_test")

    entry = entries.make_entry(
        name, shipped, run_record, report, samples_dir=samples_dir, data_dir=data_dir,
        command=command,
        record_dir=os.path.relpath(record_dir, ROOT) if record_dir else None,
        code_commit=code_commit, train_seconds=_train_seconds(os.path.join(run_dir, "metrics.json")),
        notes=notes, url=url)
    if history is not None:
        entry["training"]["history"] = history
    if robustness:
        from zoo.research import robustness as measure_robustness

        entry["robustness"] = measure_robustness.measure_built(
            lambda **kwargs: registry.build(name, weights=shipped, **arguments, **kwargs), split)
        keras.backend.clear_session()

    path = os.path.join(checkpoints_dir, pretrained.MANIFEST_NAME)
    manifest = (pretrained.read_manifest(path) if os.path.exists(path)
                else {"format_version": pretrained.FORMAT_VERSION, "checkpoints": {}})
    old = manifest["checkpoints"].get(name)
    if old and old["weights"]["file"] != entry["weights"]["file"]:
        old_path = os.path.join(checkpoints_dir, old["weights"]["file"])
        entry["supersedes"] = {
            "file": old["weights"]["file"], "sha256": old["weights"]["sha256"],
            "top1": old["metrics"]["top1"], "commit": last_shipped_commit(old_path),
            "training": {k: old["training"].get(k) for k in ("recipe", "epochs", "steps",
                                                            "precision", "train_seconds")}}
        if remove_superseded and os.path.exists(old_path):
            os.remove(old_path)
    manifest["checkpoints"][name] = entry
    pretrained.write_manifest(manifest, path)
    return entry


def register_run_isolated(**kwargs):
    """register_run(**kwargs) in a fresh process with the allocator statistics
    the memory figures need; returns the entry."""
    from zoo.runtime import call_isolated

    return call_isolated("zoo.publish.registration", "register_run", **kwargs)
