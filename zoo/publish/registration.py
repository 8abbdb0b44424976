"""Registering a trained run as a shipped checkpoint.

`register_run` ships a run's final weights as checkpoints/<name>-<tag>.weights.h5,
evaluates them in float32 on the whole test split, records the predictions on
tools/samples and the accuracy on the first 1,000 test images (which the tests
check), measures the training-step memory and the robustness to corruptions and
attacks (zoo.research.robustness), and writes the manifest entry
(zoo.entries.make_entry). A checkpoint it replaces under the same name leaves
the tree; the new entry names the file and the commit that last shipped it.

The publishing bar (zoo.pretrained.manifest.PUBLISHING_BAR) decides the name
a run is offered under: within the bar of its paper's top-1, the plain name
(replacing a preview of the same network, whose file leaves the tree);
below it, the preview name "<architecture>.<dataset>_preview". A run below
the bar never replaces a checkpoint that meets it.

A run whose top-1 is lower than that of the checkpoint shipped under its name,
measured on the same number of test images, does not replace it unless the
caller asks (`replace_lower=True`): a continued run that ended worse than the
weights it started from must not take their place behind `zoo.load(name)`. The
run's record and evaluation report are still written, with `declined.json`
saying why it was not shipped.

The memory figures need the CPU allocator's statistics, which TensorFlow keeps
only with TF_CPU_ALLOCATOR_USE_BFC=true set before it starts:
`register_run_isolated` runs the registration in a fresh process with it.
"""

import json
import os
import shutil
import subprocess

from zoo import files
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
                 robustness=True, replace_lower=False):
    """Adds a finished run to the manifest; returns the new entry, with
    "shipped": True, or, when the run is declined, a record with "shipped":
    False, its "metrics" and the "weights" that stay shipped.

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
      replace_lower: ship the run even when its top-1 is lower than that of
        the checkpoint it would replace (on the same number of test images).
    """
    from zoo import precision

    # Everything in float32; the caller's policy comes back afterwards.
    with precision.policy("float32"):
        return _register_run(
            name, run_dir, tag, weights=weights, data_dir=data_dir, record_dir=record_dir,
            command=command, code_commit=code_commit, notes=notes, url=url, history=history,
            checkpoints_dir=checkpoints_dir, samples_dir=samples_dir,
            remove_superseded=remove_superseded, robustness=robustness,
            replace_lower=replace_lower)


def _read_manifest(path):
    from zoo import pretrained

    return (pretrained.read_manifest(path) if os.path.exists(path)
            else {"format_version": pretrained.FORMAT_VERSION, "checkpoints": {}})


def lower_than_shipped(report, old):
    """Whether an evaluation report's top-1 is below that of the shipped
    manifest entry `old`; False when there is none or the two were measured
    on different numbers of images (they are not comparable)."""
    if not old or old["metrics"].get("images") != report["num_examples"]:
        return False
    return report["top1"] < old["metrics"]["top1"]


def with_earlier_runs(history, old):
    """`history` of a run warm-started from `old`, the manifest entry it
    replaces, with the runs behind `old` kept under its warm start (a warm
    start described by older code, or from a path, lacks them)."""
    warm = (history or {}).get("warm_start")
    if (not warm or warm.get("warm_start") or not warm.get("training") or not old
            or warm.get("file") != old["weights"]["file"]):
        return history
    earlier = (old["training"].get("history") or {}).get("warm_start")
    return {**history, "warm_start": {**warm, "warm_start": earlier}} if earlier else history


def _decline(name, shipped, old, report, record_dir, reason=None):
    """The record of a run that stays unshipped: its figures beside those of
    the checkpoint it would have replaced, also written to declined.json."""
    # `old` is never the same file (_register_run drops it then).
    if os.path.exists(shipped):
        os.remove(shipped)
    declined = {
        "name": name, "shipped": False,
        "reason": reason or (
            f"top-1 {report['top1']:.4f} is below the shipped checkpoint's "
            f"{old['metrics']['top1']:.4f} on the same {report['num_examples']} images"),
        "metrics": {"images": report["num_examples"], "top1": report["top1"],
                    "top5": report["top5"],
                    **({"flip_tta": {k: report["flip_tta"][k] for k in ("top1", "top5")}}
                       if "flip_tta" in report else {})},
        "weights": dict(old["weights"]),
        "kept": {"file": old["weights"]["file"], "top1": old["metrics"]["top1"]}}
    if record_dir:
        files.atomic_write(os.path.join(record_dir, "declined.json"),
                           json.dumps(declined, indent=2) + "\n")
    return declined


def _register_run(name, run_dir, tag, *, weights, data_dir, record_dir, command, code_commit,
                  notes, url, history, checkpoints_dir, samples_dir, remove_superseded,
                  robustness, replace_lower):
    import keras

    from zoo import data, evaluation, pretrained, registry, training

    checkpoints_dir = checkpoints_dir or os.path.join(ROOT, "checkpoints")
    name = pretrained.plain_name(name)
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

    path = os.path.join(checkpoints_dir, pretrained.MANIFEST_NAME)
    key = pretrained.release_key({"name": name, "metrics": {"top1": report["top1"]},
                                  "paper": registry.get_entry(name).paper_result(dataset)})
    preview = pretrained.preview_name(name)
    shipped_now = _read_manifest(path)["checkpoints"]
    # A plain checkpoint supersedes the preview of its network too.
    old = shipped_now.get(key) or (shipped_now.get(preview) if key == name else None)
    if old and old["weights"]["file"] == os.path.basename(shipped):
        old = None  # the same file again: nothing else to keep
    below_bar_of = shipped_now.get(name) if key != name else None
    if below_bar_of and below_bar_of["weights"]["file"] == os.path.basename(shipped):
        below_bar_of = None
    declined = not replace_lower and lower_than_shipped(report, old)

    if record_dir:
        os.makedirs(record_dir, exist_ok=True)
        for file in RECORD_FILES:
            src, dst = os.path.join(run_dir, file), os.path.join(record_dir, file)
            if os.path.exists(src) and not (os.path.exists(dst) and os.path.samefile(src, dst)):
                shutil.copyfile(src, dst)
        evaluation.save_report(report, os.path.join(record_dir, "eval"), prefix=f"{name}_test")
    if below_bar_of is not None:
        return _decline(name, shipped, below_bar_of, report, record_dir, reason=(
            f"top-1 {report['top1']:.4f} is below the publishing bar "
            f"({pretrained.PUBLISHING_BAR} points under the paper) and {name} ships weights "
            "that meet it"))
    if declined:
        return _decline(name, shipped, old, report, record_dir)

    entry = entries.make_entry(
        name, shipped, run_record, report, samples_dir=samples_dir, data_dir=data_dir,
        command=command,
        record_dir=os.path.relpath(record_dir, ROOT) if record_dir else None,
        code_commit=code_commit, train_seconds=_train_seconds(os.path.join(run_dir, "metrics.json")),
        notes=notes, url=url)
    entry["name"] = key
    if history is not None:
        entry["training"]["history"] = with_earlier_runs(history, old)
        warm = history.get("warm_start") or {}
        if old and old["training"].get("tied_start") and warm.get("sha256") == old["weights"]["sha256"]:
            # Trained on from weights that started weight-tied.
            entry["training"]["tied_start"] = True
    if robustness:
        from zoo.research import robustness as measure_robustness

        entry["robustness"] = measure_robustness.measure_built(
            lambda **kwargs: registry.build(name, weights=shipped, **arguments, **kwargs), split)
        keras.backend.clear_session()

    # Read again: the robustness figures take minutes.
    manifest = _read_manifest(path)
    if old:
        old_path = os.path.join(checkpoints_dir, old["weights"]["file"])
        entry["supersedes"] = {
            "file": old["weights"]["file"], "sha256": old["weights"]["sha256"],
            "top1": old["metrics"]["top1"], "commit": last_shipped_commit(old_path),
            "training": {**{k: old["training"].get(k) for k in ("recipe", "epochs", "steps",
                                                               "precision", "train_seconds")},
                         # A warm-started checkpoint's own run is only its last part.
                         "epochs_total": (old["training"].get("history") or {}).get(
                             "epochs_total") or old["training"].get("epochs")}}
        if remove_superseded and os.path.exists(old_path):
            os.remove(old_path)
    if key == name:
        # `old` was the preview (a plain name and its preview never both ship).
        manifest["checkpoints"].pop(preview, None)
    manifest["checkpoints"][key] = entry
    pretrained.write_manifest(manifest, path)
    return {**entry, "shipped": True}


def register_run_isolated(**kwargs):
    """register_run(**kwargs) in a fresh process with the allocator statistics
    the memory figures need; returns the entry."""
    from zoo.runtime import call_isolated

    return call_isolated("zoo.publish.registration", "register_run", **kwargs)
