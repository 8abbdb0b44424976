"""The training campaign (zoo.campaign) on tiny runs: the plan's checks,
atomic snapshots, resuming across time limits to the weights of an
uninterrupted run, hard kills at any moment, precision switches between
segments, and the registration of a finished run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from zoo import campaign, pretrained, registry, training

TINY_TRAIN = {"limit_train": 200, "batch_size": 50, "mixed_precision": False,
              "deterministic": True, "learning_rate": 0.05}


@pytest.fixture(scope="module")
def data_dir(cifar10_small, tmp_path_factory):
    """A data directory whose cifar10.npz is the 200/100-image cut."""
    folder = tmp_path_factory.mktemp("campaign-data")
    shutil.copy(cifar10_small, folder / "cifar10.npz")
    return str(folder)


def _plan(tmp_path, runs):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"runs": runs}))
    return str(path)


def _run(name="resnet-32-cifar10", epochs=2, **extra):
    arch = name[: -len("-cifar10")] if name.endswith("-cifar10") else "resnet-32"
    entry = {"name": name, "architecture": arch, "dataset": "cifar10", "recipe": "campaign",
             "epochs": epochs, "train": dict(TINY_TRAIN)}
    entry.update(extra)
    return entry


def _pilot(epochs, **train):
    """A pilot run: validated on 50 held-out images, so it finishes without registering."""
    return _run(name="pilot-r", kind="pilot", epochs=epochs,
                train={**TINY_TRAIN, "holdout": 50, "batch_size": 25, **train})


def _campaign(tmp_path, plan_path, data_dir, cls=campaign.Campaign, **kwargs):
    return cls(plan_path=plan_path, ledger_path=str(tmp_path / "ledger.json"),
               in_progress_dir=str(tmp_path / "in_progress"), work_dir=str(tmp_path / "work"),
               checkpoints_dir=str(tmp_path / "checkpoints"), docs_dir=str(tmp_path / "docs"),
               data_dir=data_dir, log=lambda text: None, **kwargs)


class StopAfter(campaign.Campaign):
    """Runs out of time after `steps` training steps in each call of run()."""

    steps = 2

    def run(self, *args, **kwargs):
        self.calls = 0
        return super().run(*args, **kwargs)

    def _stop_at(self):
        self.calls += 1
        return 0.0 if self.calls >= self.steps else None


def _final_weights(path):
    model = registry.build("resnet-32-cifar10")
    model.load_weights(path)
    return [w.numpy() for w in model.weights]


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------
def test_the_repository_plan_is_valid_and_starts_with_its_pilots():
    runs = campaign.read_plan(os.path.join(REPO_ROOT, "checkpoints", "campaign", "plan.json"))
    names = [run.name for run in runs]
    checkpoints = [run.name for run in runs if run.kind == "checkpoint"]
    assert checkpoints[:2] == ["hamiltonian-74-cifar10", "resnet-32-cifar10"]
    shipped = {run.checkpoint_name for run in runs if run.kind == "checkpoint"}
    assert shipped >= {
        "revnet-38-cifar10", "leapfrog-26-cifar10", "midpoint-26-cifar10", "second-order-cifar10",
        "parabolic-cifar10", "hyperbolic-hamiltonian-cifar10", "hamiltonian-218-cifar10",
        "leapfrog-62-cifar10", "midpoint-62-cifar10"}
    pilots = [run for run in runs if run.kind == "pilot"]
    assert all(run.train["holdout"] == 5000 for run in pilots)
    assert names.index("pilot-resnet-32-base") < names.index("hamiltonian-74-cifar10")
    targets = {run.name: run.target_top1 for run in runs}
    assert targets["hamiltonian-74-cifar10"] == 0.91 and targets["resnet-32-cifar10"] == 0.915
    # Every small network's 120-epoch run aims within 1.5 points of its paper.
    for run in runs:
        if run.name.endswith("-cifar10-120ep"):
            paper = registry.get_entry(run.architecture).paper_top1["cifar10"][0]
            assert run.target_top1 == pytest.approx((paper - 1.5) / 100) and run.epochs == 120


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "unknown fields"),
    ({"recipe": "fast"}, "unknown recipe"),
    ({"name": "resnet-32-cifar100"}, "must ship the checkpoint"),
    ({"name": "resnet-32-more", "checkpoint": "resnet-32-cifar100"}, "must ship the checkpoint"),
    ({"kind": "pilot", "name": "p"}, "held-out training images"),
    ({"train": {"output_dir": "/tmp"}}, "may not set"),
    ({"epochs": 0}, "positive integer"),
    ({"architecture": "resnet-33", "name": "resnet-33-cifar10"}, "resnet-33"),
    ({"ship": "ema"}, "keeps none"),
])
def test_bad_plans_are_refused_with_the_reason(tmp_path, change, message):
    entry = {**_run(), **change}
    with pytest.raises(campaign.PlanError, match=message):
        campaign.read_plan(_plan(tmp_path, [entry]))


def _h_pilot(h):
    return _run(name=f"pilot-h{h:g}", kind="pilot", epochs=1,
                train={**TINY_TRAIN, "holdout": 50, "model_args": {"h": h}})


def _h_run(**extra):
    return _run(name="hamiltonian-74-cifar10", epochs=3,
                model_args_from=["pilot-h0.1", "pilot-h0.3", "pilot-h1"], **extra)


@pytest.mark.parametrize("scores, chosen", [
    ({"pilot-h0.1": 0.60, "pilot-h0.3": 0.70, "pilot-h1": 0.65}, 0.3),
    # Within the margin of the best, the first listed (the smaller h) wins.
    ({"pilot-h0.1": 0.695, "pilot-h0.3": 0.70, "pilot-h1": 0.65}, 0.1),
    ({"pilot-h0.1": 0.50, "pilot-h0.3": 0.60, "pilot-h1": 0.80}, 1.0),
])
def test_a_run_takes_the_model_args_of_its_best_pilot(tmp_path, scores, chosen):
    plan = _plan(tmp_path, [_h_pilot(0.1), _h_pilot(0.3), _h_pilot(1.0), _h_run()])
    (tmp_path / "ledger.json").write_text(json.dumps({"finished": {
        name: {"kind": "pilot", "holdout_top1": top1} for name, top1 in scores.items()}}))
    runner = _campaign(tmp_path, plan, None)
    run = runner.next_run()
    assert run.name == "hamiltonian-74-cifar10"
    config = runner.config(run)
    assert config.model_args == {"h": chosen}
    assert config.resolved().model_args == {"h": chosen}


def test_a_run_waits_for_the_pilots_it_takes_model_args_from(tmp_path):
    plan = _plan(tmp_path, [_h_pilot(0.1), _h_pilot(0.3), _h_pilot(1.0), _h_run()])
    (tmp_path / "ledger.json").write_text(json.dumps({"finished": {
        "pilot-h0.1": {"kind": "pilot", "holdout_top1": 0.6}}}))
    runner = _campaign(tmp_path, plan, None)
    run = campaign.read_plan(plan)[-1]
    with pytest.raises(campaign.PlanError, match="'pilot-h0.3', which has not finished"):
        runner.config(run)


@pytest.mark.parametrize("runs, message", [
    ([_h_run(), _h_pilot(0.1), _h_pilot(0.3), _h_pilot(1.0)], "pilots planned before it"),
    ([_h_pilot(0.1), _h_pilot(0.3), _h_run()], "pilots planned before it"),
    ([_h_pilot(0.1), _h_pilot(0.3), _h_pilot(1.0),
      _h_run(train={**TINY_TRAIN, "model_args": {"h": 0.2}})], "without train.model_args"),
])
def test_model_args_from_must_name_earlier_pilots(tmp_path, runs, message):
    with pytest.raises(campaign.PlanError, match=message):
        campaign.read_plan(_plan(tmp_path, runs))


def test_a_run_named_twice_is_refused(tmp_path):
    with pytest.raises(campaign.PlanError, match="more than once"):
        campaign.read_plan(_plan(tmp_path, [_run(), _run()]))


def test_a_later_run_continues_a_checkpoint_and_ships_it_under_its_name(tmp_path, monkeypatch):
    from zoo.publish import registration

    first, more = campaign.read_plan(_plan(tmp_path, [
        _run(), _run(name="resnet-32-cifar10-more", checkpoint="resnet-32-cifar10",
                     warm_start="resnet-32-cifar10", notes="Runs before the next one.",
                     card_notes="Trained 2 more epochs.")]))
    assert first.checkpoint_name == more.checkpoint_name == "resnet-32-cifar10"
    registered = {}

    def register(**kwargs):
        registered.update(kwargs)
        return {"metrics": {"top1": 0.5}, "weights": {"file": "w.weights.h5"}}

    monkeypatch.setattr(registration, "register_run_isolated", register)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "manifest.json").write_text(
        json.dumps({"format_version": 1, "checkpoints": {}}))
    (tmp_path / "work" / more.name).mkdir(parents=True)
    runner = campaign.Campaign(plan_path=_plan(tmp_path, []), work_dir=str(tmp_path / "work"),
                               checkpoints_dir=str(tmp_path / "checkpoints"),
                               docs_dir=str(tmp_path / "docs"))
    warm = {"epochs_total": 74, "training": {"epochs": 60}}
    segment = {"seconds": 3600.0}
    summary = runner.finalize(more, {"steps": 10, "epochs": 2},
                              {"segments": [segment], "warm_start": warm})
    assert registered["name"] == "resnet-32-cifar10"
    assert registered["record_dir"].endswith("campaign-resnet-32-cifar10-more")
    # The epochs count those before the warm start, which was itself warm-started.
    assert registered["history"]["epochs_total"] == 2 + 74
    # Users read the card's notes; the plan's reasons stay in the command.
    assert registered["notes"] == "Trained 2 more epochs."
    assert "Runs before the next one." in registered["command"]
    assert summary["top1"] == 0.5 and summary["shipped"] is True

    # A run the registration declined: the ledger names the weights that stay.
    kept = {"file": "old.weights.h5", "top1": 0.9}
    monkeypatch.setattr(registration, "register_run_isolated", lambda **kwargs: {
        "shipped": False, "metrics": {"top1": 0.5}, "weights": {"file": kept["file"]},
        "kept": kept})
    summary = runner.finalize(more, {"steps": 10, "epochs": 2},
                              {"segments": [segment], "warm_start": warm})
    assert summary["shipped"] is False and summary["kept"] == kept


def test_a_warm_start_from_a_shipped_checkpoint_keeps_the_runs_behind_it(monkeypatch):
    import copy

    from zoo import model_cards

    # A shipped checkpoint that was itself warm-started twice (14 + 60 + 100
    # epochs), as Hamiltonian-74 was until 2026-12-06: the weights file is the
    # shipped one, the history is built here.
    name = "hamiltonian-74-cifar10"
    entry = copy.deepcopy(pretrained.info(name))
    entry["training"]["epochs"] = 100
    entry["training"]["history"] = {"epochs_total": 174, "warm_start": {
        "file": "a-60.weights.h5", "training": {"epochs": 60}, "epochs_total": 74,
        "warm_start": {"file": "a-cpu.weights.h5", "training": {"epochs": 14}}}}
    monkeypatch.setattr(pretrained, "info", lambda n: entry if n == name else None)
    described = campaign._describe_warm_start(name)
    assert described["file"] == entry["weights"]["file"]
    chain = model_cards.lineage(described)
    assert len(chain) >= 3 and chain[-1]["file"] == entry["weights"]["file"]
    assert sum(c["training"]["epochs"] for c in chain) == described["epochs_total"]


def test_registration_keeps_the_runs_behind_the_checkpoint_a_run_replaces():
    from zoo.publish import registration

    cpu = {"file": "a-cpu.weights.h5", "training": {"epochs": 14}}
    old = {"weights": {"file": "a-60.weights.h5"},
           "training": {"history": {"warm_start": cpu}}}
    warm = {"file": "a-60.weights.h5", "training": {"epochs": 60}, "epochs_total": 74}
    history = {"warm_start": warm, "epochs_total": 154}
    kept = registration.with_earlier_runs(history, old)["warm_start"]
    assert kept == {**warm, "warm_start": cpu}
    # Nothing to add: another file, no replaced entry, a chain already there.
    assert registration.with_earlier_runs(
        {"warm_start": {**warm, "file": "b.weights.h5"}}, old)["warm_start"].get(
        "warm_start") is None
    assert registration.with_earlier_runs(history, None) == history
    assert registration.with_earlier_runs({"warm_start": kept}, old)["warm_start"] == kept


def test_the_expected_speed_is_not_set_by_a_few_slowed_epochs():
    rows = [{"train_images_per_second": v} for v in (300, 420, 430, 410, 440, 425, 150, 90, 200)]
    # The mean of the last three (147) would double the ETA; the median is 410.
    assert campaign.recent_speed(rows) == 410
    assert campaign.recent_speed(rows, epochs=4) == (150 + 200) / 2
    assert campaign.recent_speed([{"train_images_per_second": None}, {}]) is None
    assert campaign.recent_speed([]) is None


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------
def _fake_run_dir(path, step):
    """A run directory with a real TF checkpoint at `step`."""
    import tensorflow as tf

    os.makedirs(path, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"step": step}))
    ckpt = tf.train.Checkpoint(v=tf.Variable(float(step)))
    manager = tf.train.CheckpointManager(ckpt, str(path / "checkpoints"), max_to_keep=2)
    manager.save(checkpoint_number=step)


def test_snapshots_replace_each_other_and_a_crash_leaves_the_last_complete_one(tmp_path):
    root = tmp_path / "in_progress" / "run"
    _fake_run_dir(tmp_path / "work", 3)
    first = campaign.write_snapshot(str(tmp_path / "work"), str(root), {"segments": [1]})
    _fake_run_dir(tmp_path / "work", 7)
    second = campaign.write_snapshot(str(tmp_path / "work"), str(root), {"segments": [1, 2]})
    assert sorted(os.listdir(root)) == sorted(["LATEST", os.path.basename(second)])
    assert not os.path.exists(first)

    # A writer killed half-way leaves a staging directory; LATEST still names
    # the last complete snapshot, and the next snapshot clears the debris.
    debris = root / ".tmp-killed"
    debris.mkdir()
    (debris / "config.json").write_text("{")
    assert campaign.latest_snapshot(str(root)) == second
    history = campaign.restore_snapshot(str(root), str(tmp_path / "restored"))
    assert history == {"segments": [1, 2]}
    assert json.loads((tmp_path / "restored" / "config.json").read_text()) == {"step": 7}
    third = campaign.write_snapshot(str(tmp_path / "work"), str(root), {"segments": [3]})
    assert sorted(os.listdir(root)) == sorted(["LATEST", os.path.basename(third)])


def test_a_pointer_to_a_missing_snapshot_is_an_error_not_a_fresh_start(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    (root / "LATEST").write_text("ckpt-5-gone\n")
    with pytest.raises(FileNotFoundError, match="ckpt-5-gone"):
        campaign.latest_snapshot(str(root))


# --------------------------------------------------------------------------
# Resuming
# --------------------------------------------------------------------------
def _segments(runner):
    run = runner.runs()[0]
    latest = campaign.latest_snapshot(runner.snapshot_root(run))
    with open(os.path.join(latest or runner.run_dir(run), "campaign.json")) as f:
        return [(s["from_step"], s["to_step"], s["precision"]) for s in json.load(f)["segments"]]


def test_resuming_across_time_limits_gives_the_weights_of_an_uninterrupted_run(
        tmp_path, data_dir):
    plan = _plan(tmp_path, [_pilot(epochs=2, ema_decay=0.9)])  # 5 steps an epoch
    reference = _campaign(tmp_path / "a", plan, data_dir)
    assert reference.run(60, lower_priority=False, min_minutes=0) == ["pilot-r"]

    interrupted = _campaign(tmp_path / "b", plan, data_dir, cls=StopAfter)
    for _ in range(2):
        assert interrupted.run(60, lower_priority=False, min_minutes=0) == []
        assert interrupted.status()[0]["state"] == "in progress"
    segments = _segments(interrupted)
    assert [s[:2] for s in segments] == [(0, 2), (2, 4)]
    assert all(s[2] == "float32" for s in segments)

    interrupted.steps = 10 ** 6
    assert interrupted.run(60, lower_priority=False, min_minutes=0) == ["pilot-r"]
    for name in ("last.weights.h5", "ema.weights.h5"):
        for a, b in zip(_final_weights(tmp_path / "a" / "work" / "pilot-r" / name),
                        _final_weights(tmp_path / "b" / "work" / "pilot-r" / name)):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    rows_a = json.loads((tmp_path / "a" / "work" / "pilot-r" / "metrics.json").read_text())
    rows_b = json.loads((tmp_path / "b" / "work" / "pilot-r" / "metrics.json").read_text())
    assert [r["epoch"] for r in rows_b] == [1, 2]
    assert rows_b[-1]["val_ema_accuracy"] == pytest.approx(rows_a[-1]["val_ema_accuracy"])


def test_precision_may_switch_between_segments_and_is_recorded(tmp_path, data_dir):
    runner = _campaign(tmp_path, _plan(tmp_path, [_pilot(epochs=1)]), data_dir, cls=StopAfter)
    runner.run(60, lower_priority=False, min_minutes=0)
    # The plan now asks for bfloat16, as a machine with native bfloat16 would.
    _plan(tmp_path, [_pilot(epochs=1, mixed_precision=True)])
    runner.steps = 10 ** 6
    assert runner.run(60, lower_priority=False, min_minutes=0) == ["pilot-r"]
    assert _segments(runner) == [(0, 2, "float32"), (2, 5, "mixed_bfloat16")]


KILLED = """
import sys
from zoo import campaign
plan, root, data_dir = sys.argv[1:4]
campaign.Campaign(plan_path=plan, ledger_path=root + "/ledger.json",
                  in_progress_dir=root + "/in_progress", work_dir=root + "/work",
                  checkpoints_dir=root + "/checkpoints", docs_dir=root + "/docs",
                  data_dir=data_dir).run(60, lower_priority=False, min_minutes=0)
"""


def test_a_hard_kill_at_any_moment_leaves_a_snapshot_that_resumes_exactly(tmp_path, data_dir):
    plan = [_pilot(epochs=8)]
    reference = _campaign(tmp_path / "a", _plan(tmp_path, plan), data_dir)
    reference.run(60, lower_priority=False, min_minutes=0)

    root = tmp_path / "b"
    snapshots = root / "in_progress" / "pilot-r"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    rng = np.random.default_rng(0)
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(KILLED), _plan(tmp_path, plan), str(root),
             data_dir], env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        # Wait for a new snapshot, then kill at a random moment of the next ones.
        before = (campaign.latest_snapshot(str(snapshots)) if (snapshots / "LATEST").exists()
                  else None)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (snapshots / "LATEST").exists() and campaign.latest_snapshot(
                    str(snapshots)) != before:
                break
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.0, 1.5)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        if not (snapshots / "LATEST").exists():
            break  # the run finished before the kill
        # Whatever the moment, LATEST names a complete, readable snapshot.
        import tensorflow as tf

        latest = campaign.latest_snapshot(str(snapshots))
        assert tf.train.latest_checkpoint(os.path.join(latest, "checkpoints"))
        json.loads(open(os.path.join(latest, "campaign.json")).read())
    assert kills >= 1

    _campaign(root, _plan(tmp_path, plan), data_dir).run(60, lower_priority=False,
                                                         min_minutes=0)
    for a, b in zip(_final_weights(tmp_path / "a" / "work" / "pilot-r" / "last.weights.h5"),
                    _final_weights(root / "work" / "pilot-r" / "last.weights.h5")):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


def test_sigterm_stops_after_the_step_with_a_snapshot(tmp_path, data_dir):
    root = tmp_path / "run"
    plan = _plan(tmp_path, [_pilot(epochs=50)])
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED), plan, str(root),
                             data_dir], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    snapshots = root / "in_progress" / "pilot-r"
    deadline = time.time() + 120
    while time.time() < deadline and not (snapshots / "LATEST").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "stopping after this step" in out and "out of time" in out
    history = json.loads(open(os.path.join(campaign.latest_snapshot(str(snapshots)),
                                           "campaign.json")).read())
    assert history["segments"][-1]["to_step"] >= 3


# --------------------------------------------------------------------------
# Finishing
# --------------------------------------------------------------------------
def test_a_finished_run_is_registered_replacing_the_old_checkpoint(tmp_path, data_dir,
                                                                    monkeypatch):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    manifest = pretrained.read_manifest(os.path.join(REPO_ROOT, "checkpoints", "manifest.json"))
    shipped = manifest["checkpoints"]["resnet-32-cifar10"]
    old = shipped["weights"]["file"]  # whichever weights ship today
    shutil.copy(os.path.join(REPO_ROOT, "checkpoints", old), checkpoints / old)
    # Offered as a preview, which a one-epoch run (far below the bar) may replace.
    preview = "resnet-32.cifar10_preview"
    manifest["checkpoints"] = {preview: {**shipped, "name": preview}}
    pretrained.write_manifest(manifest, str(checkpoints / "manifest.json"))

    plan = _plan(tmp_path, [_run(epochs=1, warm_start=str(checkpoints / old),
                                 target_top1=0.05, tag="tiny")])
    runner = _campaign(tmp_path, plan, data_dir)
    assert runner.run(60, lower_priority=False, min_minutes=0) == ["resnet-32-cifar10"]

    registered = pretrained.read_manifest(str(checkpoints / "manifest.json"))["checkpoints"]
    assert list(registered) == [preview]
    entry = registered[preview]
    assert entry["name"] == preview
    assert entry["weights"]["file"] == "resnet-32-cifar10-tiny.weights.h5"
    assert (checkpoints / entry["weights"]["file"]).exists()
    assert not (checkpoints / old).exists()
    assert entry["supersedes"]["file"] == old
    assert entry["supersedes"]["top1"] == shipped["metrics"]["top1"]
    assert entry["metrics"]["images"] == 100
    # Robustness is measured at registration, here on the whole 100-image split.
    assert entry["robustness"]["protocol"]["images"] == 100
    assert entry["robustness"]["checks"]["images"] == 100
    history = entry["training"]["history"]
    assert history["warm_start"]["file"] == old
    # Weights trained on from a weight-tied start stay flagged; the drift of
    # neighbouring kernels is measured on the new weights.
    assert entry["training"]["tied_start"] is bool(shipped["training"].get("tied_start"))
    assert 0 < entry["kernel_drift"]["min"] <= entry["kernel_drift"]["max"] < 2
    assert history["segments"][0]["to_step"] == 4 and history["epochs_total"] == 1
    assert os.path.exists(tmp_path / "docs" / "campaign-resnet-32-cifar10" / "metrics.json")
    assert not os.path.exists(runner.snapshot_root(runner.runs()[0]))
    ledger = runner.ledger()["finished"]["resnet-32-cifar10"]
    assert ledger["top1"] == entry["metrics"]["top1"]
    assert ledger["target_met"] == (entry["metrics"]["top1"] >= 0.05)
    assert ledger["segments"] == len(history["segments"]) == 1
    assert runner.status()[0]["state"] == "finished"
    # The plan is done: run() returns at once.
    assert runner.run(60, lower_priority=False, min_minutes=0) == []

    # A run below the checkpoint it would replace (on the same 100 images)
    # leaves it shipped, and says so...
    from zoo.publish import entries, registration

    manifest = pretrained.read_manifest(str(checkpoints / "manifest.json"))
    manifest["checkpoints"][preview]["metrics"]["top1"] = 1.0
    pretrained.write_manifest(manifest, str(checkpoints / "manifest.json"))
    before = (checkpoints / "manifest.json").read_bytes()
    arguments = dict(name="resnet-32-cifar10", run_dir=runner.run_dir(runner.runs()[0]),
                     tag="lower", data_dir=data_dir, record_dir=str(tmp_path / "docs" / "lower"),
                     checkpoints_dir=str(checkpoints), robustness=False)
    declined = registration.register_run(**arguments)
    assert declined["shipped"] is False
    assert declined["kept"] == {"file": entry["weights"]["file"], "top1": 1.0}
    assert declined["metrics"]["images"] == 100 and declined["metrics"]["top1"] < 1.0
    assert (checkpoints / "manifest.json").read_bytes() == before
    assert (checkpoints / entry["weights"]["file"]).exists()
    assert not (checkpoints / "resnet-32-cifar10-lower.weights.h5").exists()
    with open(tmp_path / "docs" / "lower" / "declined.json") as f:
        assert json.load(f)["metrics"] == declined["metrics"]
    # ...unless the caller asks (the memory figure needs its own process).
    monkeypatch.setattr(entries, "training_memory", lambda *args, **kwargs: {})
    forced = registration.register_run(**arguments, replace_lower=True)
    assert forced["shipped"] is True and forced["supersedes"]["top1"] == 1.0
    # The replaced weights were themselves warm-started: their card line
    # counts the epochs behind them, not only their own run's.
    assert forced["supersedes"]["training"]["epochs_total"] == history["epochs_total"] == 1
    assert pretrained.read_manifest(str(checkpoints / "manifest.json"))["checkpoints"][
        preview]["weights"]["file"] == "resnet-32-cifar10-lower.weights.h5"
    assert not (checkpoints / entry["weights"]["file"]).exists()

    # A run that meets the bar goes under the plain name and takes the
    # preview's place, file and all (a bar of 100 points: every run meets it)...
    monkeypatch.setattr(pretrained.manifest, "PUBLISHING_BAR", 100.0)
    plain = registration.register_run(**{**arguments, "tag": "plain"})
    assert plain["shipped"] is True and plain["name"] == "resnet-32-cifar10"
    assert plain["supersedes"]["file"] == "resnet-32-cifar10-lower.weights.h5"
    registered = pretrained.read_manifest(str(checkpoints / "manifest.json"))["checkpoints"]
    assert list(registered) == ["resnet-32-cifar10"]
    assert not (checkpoints / "resnet-32-cifar10-lower.weights.h5").exists()
    # ...and a run below the bar never replaces it, however it compares.
    monkeypatch.setattr(pretrained.manifest, "PUBLISHING_BAR", 1.5)
    before = (checkpoints / "manifest.json").read_bytes()
    below = registration.register_run(**{**arguments, "tag": "below", "replace_lower": True})
    assert below["shipped"] is False and "publishing bar" in below["reason"]
    assert (checkpoints / "manifest.json").read_bytes() == before
    assert not (checkpoints / "resnet-32-cifar10-below.weights.h5").exists()


def test_a_finished_pilot_writes_its_figures_on_held_out_images(tmp_path, data_dir):
    plan = _plan(tmp_path, [_run(name="pilot-tiny", kind="pilot", epochs=1,
                                 train={**TINY_TRAIN, "holdout": 50, "ema_decay": 0.9,
                                        "label_smoothing": 0.1})])
    runner = _campaign(tmp_path, plan, data_dir)
    assert runner.run(60, lower_priority=False, min_minutes=0) == ["pilot-tiny"]
    record = json.loads((tmp_path / "docs" / "recipe_pilots" / "pilot-tiny.json").read_text())
    assert record["validation_split"] == "holdout"
    # A stratified share: 50 of 200 rounds per class to 51.
    assert record["validation_images"] == 51 and record["train_images"] == 149
    assert "ema_accuracy" in record["final"]
    table = (tmp_path / "docs" / "recipe_pilots" / "table.md").read_text()
    assert ("| pilot-tiny | resnet-32 | - | 1 | 1 | 50 | 0.05 | 0.0005 | 0.1 | 0.9 | float32 |"
            in table)


def test_label_smoothing_loss_matches_its_definition():
    import tensorflow as tf

    probs = tf.constant([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    labels = tf.constant([0, 2])
    loss = training.SmoothedSparseCrossentropy(0.3, reduction=None)(labels, probs).numpy()
    p = probs.numpy()
    expected = [0.7 * -np.log(p[i, y]) + 0.3 * -np.log(p[i]).mean() for i, y in enumerate([0, 2])]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    plain = training.SmoothedSparseCrossentropy(0.0, reduction=None)(labels, probs).numpy()
    np.testing.assert_allclose(plain, [-np.log(0.7), -np.log(0.8)], rtol=1e-6)


def test_a_diverging_run_is_recorded_as_failed_and_the_next_one_starts(tmp_path, data_dir):
    bad = _pilot(epochs=1, learning_rate=1e30)
    good = {**_pilot(epochs=1), "name": "pilot-next"}
    runner = _campaign(tmp_path, _plan(tmp_path, [bad, good]), data_dir)
    assert runner.run(60, lower_priority=False, min_minutes=0) == ["pilot-next"]
    failed = runner.ledger()["finished"]["pilot-r"]
    assert "training loss became nan" in failed["failed"].lower()
    assert [r["state"] for r in runner.status()] == ["failed", "finished"]
