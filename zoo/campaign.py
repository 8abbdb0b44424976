"""The training campaign: a plan of runs trained one after another, across
sessions and machines, each resumed from a snapshot kept in the repository.

    python tools/campaign.py status
    python tools/campaign.py run --minutes 150

The plan (`checkpoints/campaign/plan.json`) lists the runs in order. `run`
resumes the first unfinished one from its snapshot, trains until the time is
up, and exits cleanly; a run that ends is finalised (a "checkpoint" run is
evaluated on the whole test split and registered in the manifest and
MODEL_CARDS.md; a "pilot" run, validated on held-out training images, writes
its figures to docs/recipe_pilots/), recorded in the ledger
(`checkpoints/campaign/ledger.json`), its snapshot removed, and the next run
starts.

Snapshots. A run trains in a scratch directory (runs/campaign/<run>/). After
every checkpoint it writes (every `SNAPSHOT_SECONDS` at least, at every epoch
end, and before it stops) its resumable state (configuration, metrics,
weights, optimizer state, weight average, position in the data order) and its
history of segments is copied to checkpoints/in_progress/<run>/ as a new
directory, made complete before the file LATEST is atomically replaced to
name it; older ones are then deleted. A process killed at any moment leaves
LATEST naming a complete snapshot, and loses at most the time since it.
Resuming restores the scratch directory from the snapshot, so the repository's
copy is what continues a run in a later session or on another machine.

Segments. Each stretch of training in one process is a segment, recorded with
its machine, precision, engine, steps and seconds. The precision is chosen per
machine (bfloat16 where it is native, float32 elsewhere), so a run may switch
between segments; the weights and optimizer state are float32 either way.
"""

import dataclasses
import datetime
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from typing import Optional

from zoo import files, provenance, training
from zoo.errors import PlanError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAPSHOT_SECONDS = 15 * 60
LATEST = "LATEST"
KINDS = ("checkpoint", "pilot")
# Held-out top-1 within which a run's model_args_from prefers the pilot
# listed first: about one standard error at 5,000 held-out images and 70%.
PILOT_MARGIN = 0.01
SHIP = ("last", "ema")
# Fields of zoo.training.TrainConfig a plan entry may set besides its own.
TRAIN_OVERRIDES = frozenset({
    "batch_size", "learning_rate", "weight_decay", "smoothness_decay", "label_smoothing",
    "ema_decay", "holdout", "limit_train", "limit_eval", "model_args", "control_points",
    "validation_freq", "deterministic", "reversible", "mixed_precision", "fraction", "steps",
    "schedule_epochs"})


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """One run of the plan.

    `name` names the run; a "checkpoint" run ships the checkpoint
    `checkpoint` ("<architecture>-<dataset>"; default: the run's name), so
    that a later run can continue training a shipped checkpoint and replace
    it under the same name. `warm_start` is a pretrained name or weights
    file the run starts from (a new schedule on trained weights). `ship` says,
    before the run, which weights ship: the last ones or their moving average.
    `gpu_recipe` replaces `recipe` for a run started on a GPU. `train` holds
    further TrainConfig fields (learning_rate, label_smoothing, holdout, ...).
    `model_args_from` names pilots, in order of preference, whose
    `train.model_args` the run takes when it starts: those of the pilot with
    the best held-out top-1, or of the first listed within `PILOT_MARGIN` of
    it (so a difference a reseed could make does not pick the less preferred
    one, e.g. the larger step size). The choice is recorded with the run.
    `notes` give the plan's reasons, written before the run (they stay in the
    shipped entry's command); `card_notes` are what the shipped entry and its
    model card say to users, so they describe the weights, not the plan.
    """

    name: str
    architecture: str
    dataset: str
    recipe: str
    epochs: int
    kind: str = "checkpoint"
    checkpoint: Optional[str] = None
    warm_start: Optional[str] = None
    target_top1: Optional[float] = None
    ship: str = "last"
    tag: Optional[str] = None
    gpu_recipe: Optional[str] = None
    seed: int = 0
    train: dict = dataclasses.field(default_factory=dict)
    model_args_from: tuple = ()
    notes: Optional[str] = None
    card_notes: Optional[str] = None

    @classmethod
    def from_dict(cls, entry):
        if not isinstance(entry, dict):
            raise PlanError(f"A plan run must be an object, got {entry!r}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise PlanError(f"Run {entry.get('name')!r}: unknown fields {unknown}.")
        missing = sorted(f for f in ("name", "architecture", "dataset", "recipe", "epochs")
                         if f not in entry)
        if missing:
            raise PlanError(f"Run {entry.get('name')!r}: missing fields {missing}.")
        if "model_args_from" in entry:
            entry = {**entry, "model_args_from": tuple(entry["model_args_from"])}
        run = cls(**entry)
        run.check()
        return run

    @property
    def checkpoint_name(self):
        """The pretrained name a checkpoint run ships."""
        return self.checkpoint or self.name

    def check(self):
        from zoo import registry

        if self.kind not in KINDS:
            raise PlanError(f"Run {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}.")
        if self.ship not in SHIP:
            raise PlanError(f"Run {self.name!r}: ship must be one of {SHIP}, got {self.ship!r}.")
        for recipe in (self.recipe, self.gpu_recipe):
            if recipe is not None and recipe not in training.RECIPES:
                raise PlanError(f"Run {self.name!r}: unknown recipe {recipe!r}; "
                                f"choose from {sorted(training.RECIPES)}.")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise PlanError(f"Run {self.name!r}: epochs must be a positive integer.")
        try:
            registry.get_entry(self.architecture)
        except (KeyError, ValueError) as error:
            raise PlanError(f"Run {self.name!r}: {error}") from error
        bad = sorted(set(self.train) - TRAIN_OVERRIDES)
        if bad:
            raise PlanError(f"Run {self.name!r}: train may not set {bad}; it may set "
                            f"{sorted(TRAIN_OVERRIDES)}.")
        if (self.kind == "checkpoint"
                and self.checkpoint_name != f"{self.architecture}-{self.dataset}"):
            raise PlanError(f"Checkpoint run {self.name!r} must ship the checkpoint "
                            f"{self.architecture}-{self.dataset} (its name or `checkpoint`).")
        if self.model_args_from and (self.kind != "checkpoint"
                                     or "model_args" in self.train):
            raise PlanError(f"Run {self.name!r}: model_args_from is for checkpoint runs "
                            "without train.model_args of their own.")
        if self.kind == "pilot" and not self.train.get("holdout"):
            raise PlanError(f"Pilot {self.name!r} must validate on held-out training images "
                            "(train.holdout), not on the test set.")
        if self.ship == "ema" and not self.train.get("ema_decay") and (
                training.RECIPES[self.recipe].ema_decay is None):
            raise PlanError(f"Run {self.name!r} ships its weight average but keeps none "
                            "(set train.ema_decay or a recipe with one).")


def read_plan(path):
    """The plan's runs, in order."""
    with open(path) as f:
        try:
            plan = json.load(f)
        except json.JSONDecodeError as error:
            raise PlanError(f"{path} is not JSON: {error}") from error
    runs = [PlannedRun.from_dict(entry) for entry in plan.get("runs", [])]
    names = [run.name for run in runs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise PlanError(f"{path}: runs named more than once: {duplicated}.")
    for index, run in enumerate(runs):
        later = [name for name in run.model_args_from
                 if name not in names[:index] or runs[names.index(name)].kind != "pilot"]
        if later:
            raise PlanError(f"{path}: run {run.name!r} takes its model_args from {later}, "
                            "which must be pilots planned before it.")
    return runs


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _fsync_tree(directory):
    for folder, _, names in os.walk(directory):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------
def latest_snapshot(snapshot_root):
    """The directory LATEST names under `snapshot_root`, or None."""
    pointer = os.path.join(snapshot_root, LATEST)
    if not os.path.exists(pointer):
        return None
    with open(pointer) as f:
        name = f.read().strip()
    path = os.path.join(snapshot_root, name)
    if not name or not os.path.isdir(path):
        raise FileNotFoundError(f"{pointer} names {name!r}, which is not there.")
    return path


def write_snapshot(run_dir, snapshot_root, history):
    """Copies the resumable state of `run_dir` and `history` into a new
    directory under `snapshot_root`, points LATEST at it, then deletes every
    other snapshot. Returns the new snapshot's path."""
    os.makedirs(snapshot_root, exist_ok=True)
    staging = tempfile.mkdtemp(dir=snapshot_root, prefix=".tmp-")
    prefix = os.path.basename(training.snapshot_run(run_dir, staging))
    files.atomic_write(os.path.join(staging, "campaign.json"), json.dumps(history, indent=2))
    _fsync_tree(staging)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    os.rename(staging, os.path.join(snapshot_root, name))
    files.atomic_write(os.path.join(snapshot_root, LATEST), name + "\n")
    for other in os.listdir(snapshot_root):
        if other not in (LATEST, name):
            path = os.path.join(snapshot_root, other)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return os.path.join(snapshot_root, name)


def restore_snapshot(snapshot_root, run_dir):
    """Replaces `run_dir` with the latest snapshot's state; returns its history
    (None where there is no snapshot)."""
    snapshot = latest_snapshot(snapshot_root)
    if snapshot is None:
        return None
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    shutil.copytree(snapshot, run_dir)
    history_path = os.path.join(run_dir, "campaign.json")
    with open(history_path) as f:
        history = json.load(f)
    os.remove(history_path)
    return history


# --------------------------------------------------------------------------
# The campaign
# --------------------------------------------------------------------------
class Campaign:
    """A plan, its ledger of finished runs, snapshots and scratch space.

    Paths default to the repository's; tests give their own.
    """

    def __init__(self, plan_path=None, ledger_path=None, in_progress_dir=None, work_dir=None,
                 checkpoints_dir=None, docs_dir=None, data_dir=None, log=print):
        self.plan_path = plan_path or os.path.join(ROOT, "checkpoints", "campaign", "plan.json")
        self.ledger_path = ledger_path or os.path.join(os.path.dirname(self.plan_path),
                                                       "ledger.json")
        self.in_progress_dir = in_progress_dir or os.path.join(ROOT, "checkpoints", "in_progress")
        self.work_dir = work_dir or os.path.join(ROOT, "runs", "campaign")
        self.checkpoints_dir = checkpoints_dir or os.path.join(ROOT, "checkpoints")
        self.docs_dir = docs_dir or os.path.join(ROOT, "docs")
        self.data_dir = data_dir
        self.log = log

    # The plan and the ledger ------------------------------------------------
    def runs(self):
        return read_plan(self.plan_path)

    def ledger(self):
        if not os.path.exists(self.ledger_path):
            return {"finished": {}}
        with open(self.ledger_path) as f:
            return json.load(f)

    def _record_finished(self, run, summary):
        ledger = self.ledger()
        ledger["finished"][run.name] = summary
        files.atomic_write(self.ledger_path, json.dumps(ledger, indent=2) + "\n")

    def snapshot_root(self, run):
        return os.path.join(self.in_progress_dir, run.name)

    def run_dir(self, run):
        return os.path.join(self.work_dir, run.name)

    def next_run(self):
        finished = self.ledger()["finished"]
        return next((run for run in self.runs() if run.name not in finished), None)

    # Configuration -----------------------------------------------------------
    def pilot_choice(self, run):
        """Which pilot of `run.model_args_from` the run takes its model_args
        from, with every pilot's held-out top-1 (None when the run names
        none); an unfinished pilot is an error. read_plan has checked that
        the names are pilots planned before the run."""
        if not run.model_args_from:
            return None
        finished = self.ledger()["finished"]
        scores = {}
        for name in run.model_args_from:
            scores[name] = finished.get(name, {}).get("holdout_top1")
            if scores[name] is None:
                raise PlanError(f"Run {run.name!r} takes its model_args from {name!r}, "
                                "which has not finished.")
        best = max(scores.values())
        chosen = next(name for name, top1 in scores.items() if top1 >= best - PILOT_MARGIN)
        pilot = next(p for p in self.runs() if p.name == chosen)
        return {"chosen": chosen, "model_args": dict(pilot.train.get("model_args") or {}),
                "holdout_top1": scores}

    def config(self, run, on_gpu=False, verbose=2, choice=None):
        """The TrainConfig a run starts with on this machine (`choice`: its
        pilot_choice, when the caller has it already)."""
        recipe = run.gpu_recipe if on_gpu and run.gpu_recipe else run.recipe
        fields = dict(run.train)
        choice = choice or self.pilot_choice(run)
        if choice is not None:
            fields["model_args"] = choice["model_args"]
        if "steps" not in fields:
            fields["epochs"] = run.epochs
        return training.TrainConfig(
            model=run.architecture, dataset=run.dataset, data_dir=self.data_dir,
            output_dir=self.run_dir(run), recipe=recipe, warm_start=run.warm_start,
            seed=run.seed, checkpoint_every=0, verbose=verbose, **fields)

    def _resumed_config(self, run, verbose):
        """The config of a run whose scratch directory holds its saved
        configuration: as saved, with this machine's precision."""
        with open(os.path.join(self.run_dir(run), "config.json")) as f:
            saved = json.load(f)
        fields = {f.name for f in dataclasses.fields(training.TrainConfig)}
        saved = {k: v for k, v in saved.items() if k in fields}
        # Precision follows the machine; the recipe's choice (None: by
        # machine) is what the plan fixed.
        saved.update(output_dir=self.run_dir(run), data_dir=self.data_dir, verbose=verbose,
                     mixed_precision=run.train.get("mixed_precision"))
        return training.TrainConfig(**saved)

    # Training ----------------------------------------------------------------
    def run(self, minutes, verbose=2, min_minutes=2.0, lower_priority=True):
        """Trains the plan's runs in order for `minutes`; returns the names of
        the runs finished in this call. A run whose loss stops being finite is
        recorded as failed in the ledger and the next one starts."""
        if lower_priority:
            try:
                os.nice(19 - os.nice(0))
            except OSError:
                pass
        self.deadline = time.time() + 60 * minutes
        finished = []
        # SIGTERM or Ctrl-C: stop after the current step, with a snapshot.
        previous = {sig: signal.signal(sig, self._stop_soon)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while True:
                run = self.next_run()
                if run is None:
                    self.log("The plan is done: every run is finished.")
                    break
                if self.deadline - time.time() < 60 * min_minutes:
                    self.log(f"Less than {min_minutes:g} minutes left: stopping before "
                             f"{run.name}.")
                    break
                try:
                    done = self.train_run(run, verbose)
                except training.TrainingDiverged as error:
                    # Recorded and passed over, so that one bad run does not
                    # stop the plan; its snapshot stays for whoever looks.
                    self.log(f"{run.name}: FAILED: {error}")
                    self._record_finished(run, {"finished": now_iso(), "kind": run.kind,
                                                "failed": str(error)})
                    continue
                if done:
                    finished.append(run.name)
                else:
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return finished

    def _stop_soon(self, signum, frame):
        self.log(f"Signal {signum}: stopping after this step, with a snapshot.")
        self.deadline = 0.0

    def _stop_at(self):
        return self.deadline

    def train_run(self, run, verbose=2):
        """Trains one run until it ends (then finalises it; returns True) or
        the deadline passes (returns False)."""
        import keras
        import tensorflow as tf

        on_gpu = bool(tf.config.list_physical_devices("GPU"))
        history = restore_snapshot(self.snapshot_root(run), self.run_dir(run))
        if history is None:
            if os.path.exists(self.run_dir(run)):
                shutil.rmtree(self.run_dir(run))
            choice = self.pilot_choice(run)
            config = self.config(run, on_gpu, verbose, choice=choice)
            history = {"run": run.name, "started": now_iso(), "segments": [],
                       "warm_start": _describe_warm_start(run.warm_start)}
            if choice is not None:
                history["model_args_from"] = choice
                self.log(f"{run.name}: model_args {choice['model_args']} from "
                         f"{choice['chosen']}.")
            self.log(f"{run.name}: starting ({config.recipe} recipe, {run.epochs} epochs"
                     + (f", warm start from {run.warm_start}" if run.warm_start else "") + ").")
        else:
            config = self._resumed_config(run, verbose)
            self.log(f"{run.name}: resuming from {latest_snapshot(self.snapshot_root(run))}.")
        resolved = config.resolved()
        segment = {"started": now_iso(), "ended": None,
                   "precision": training.dtype_policy(resolved.mixed_precision),
                   "engine": "reversible" if training.uses_reversible_engine(resolved)
                   else "autodiff",
                   "recipe": resolved.recipe, "hardware": provenance.hardware(),
                   "from_step": _checkpoint_step(self.run_dir(run)), "to_step": None,
                   "seconds": 0.0}
        history["segments"].append(segment)
        clock = time.perf_counter()

        def snapshot(path):
            segment["to_step"] = int(path.rsplit("-", 1)[1])
            segment["ended"] = now_iso()
            segment["seconds"] = round(time.perf_counter() - clock, 1)
            write_snapshot(self.run_dir(run), self.snapshot_root(run), history)

        try:
            results = training.train(config, stop_at=self._stop_at,
                                     checkpoint_seconds=SNAPSHOT_SECONDS,
                                     on_checkpoint=snapshot)
        finally:
            keras.backend.clear_session()
        if not results["finished"]:
            self.log(f"{run.name}: out of time at step {results['steps']} of "
                     f"{results['total_steps']}; snapshot in {self.snapshot_root(run)}.")
            return False
        summary = self.finalize(run, results, history)
        self._record_finished(run, summary)
        shutil.rmtree(self.snapshot_root(run), ignore_errors=True)
        self.log(f"{run.name}: finished; {summary}")
        return True

    # Finishing ---------------------------------------------------------------
    def finalize(self, run, results, history):
        """Evaluates and registers a finished checkpoint run, or writes a
        pilot's figures; returns the ledger's summary of it."""
        history = {**history, "finished": now_iso()}
        run_dir = self.run_dir(run)
        files.atomic_write(os.path.join(run_dir, "campaign.json"),
                              json.dumps(history, indent=2))
        summary = {"finished": history["finished"], "kind": run.kind,
                   "steps": results["steps"], "epochs": results["epochs"],
                   "train_seconds": round(sum(s["seconds"] for s in history["segments"]), 1),
                   # Segments, not sessions: a session that restarts the
                   # campaign adds a segment.
                   "segments": len(history["segments"])}
        if run.kind == "pilot":
            summary.update(self.write_pilot(run, results, history))
            return summary
        from zoo import model_cards, pretrained
        from zoo.publish import registration

        tag = run.tag or f"{run.recipe}{run.epochs}ep"
        weights = os.path.join(run_dir, f"{run.ship}.weights.h5")
        entry = registration.register_run_isolated(
            name=run.checkpoint_name, run_dir=run_dir, tag=tag, weights=weights,
            data_dir=self.data_dir,
            record_dir=os.path.join(self.docs_dir, f"campaign-{run.name}"),
            command="python tools/campaign.py run (plan entry "
                    f"{json.dumps(dataclasses.asdict(run), sort_keys=True)})",
            notes=run.card_notes, history=_history_for_manifest(history, run),
            checkpoints_dir=self.checkpoints_dir)
        manifest = pretrained.read_manifest(
            os.path.join(self.checkpoints_dir, pretrained.MANIFEST_NAME))
        if os.path.abspath(self.checkpoints_dir) == os.path.join(ROOT, "checkpoints"):
            files.atomic_write(os.path.join(ROOT, "MODEL_CARDS.md"),
                                  model_cards.render(manifest))
        # A run below the checkpoint it would replace stays unshipped
        # (zoo.publish.registration); the ledger says which weights ship.
        summary.update(top1=entry["metrics"]["top1"], weights=entry["weights"]["file"],
                       shipped=entry.get("shipped", True),
                       **({"kept": entry["kept"]} if "kept" in entry else {}),
                       target_top1=run.target_top1,
                       target_met=(None if run.target_top1 is None
                                   else entry["metrics"]["top1"] >= run.target_top1))
        return summary

    def write_pilot(self, run, results, history):
        """A pilot's metrics per epoch and its final held-out figures, in
        docs/recipe_pilots/<name>.json, and the table of every pilot."""
        folder = os.path.join(self.docs_dir, "recipe_pilots")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(self.run_dir(run), "metrics.json")) as f:
            rows = json.load(f)
        final = results["test"]
        record = {"run": dataclasses.asdict(run), "validation_split": results["validation_split"],
                  "validation_images": results["test_examples"],
                  "train_images": results["train_examples"],
                  "final": final, "config": results["config"], "epochs": rows,
                  "history": history}
        files.atomic_write(os.path.join(folder, f"{run.name}.json"),
                              json.dumps(record, indent=2) + "\n")
        files.atomic_write(os.path.join(folder, "table.md"), pilot_table(folder))
        summary = {"holdout_top1": final["accuracy"]}
        if "ema_accuracy" in final:
            summary["holdout_ema_top1"] = final["ema_accuracy"]
        return summary

    # Status ------------------------------------------------------------------
    def status(self):
        """One dict per planned run: state, epochs, last validation top-1,
        measured speed and the time left at that speed."""
        ledger = self.ledger()["finished"]
        rows = []
        for run in self.runs():
            row = {"name": run.name, "kind": run.kind, "epochs_planned": run.epochs,
                   "epochs_done": 0, "val_top1": None, "images_per_second": None,
                   "eta_hours": None, "target_top1": run.target_top1}
            if run.name in ledger:
                done = ledger[run.name]
                row.update(state="failed" if "failed" in done else "finished",
                           epochs_done=done.get("epochs"),
                           val_top1=done.get("top1", done.get("holdout_top1")))
                rows.append(row)
                continue
            snapshot = None
            try:
                snapshot = latest_snapshot(self.snapshot_root(run))
            except FileNotFoundError:
                row["state"] = "snapshot missing"
            if snapshot is None:
                row.setdefault("state", "pending")
                rows.append(row)
                continue
            row["state"] = "in progress"
            metrics, config = _read_json(snapshot, "metrics.json") or [], _read_json(
                snapshot, "config.json") or {}
            history = _read_json(snapshot, "campaign.json") or {}
            step = max((s.get("to_step") or 0 for s in history.get("segments", [])), default=0)
            if metrics:
                row["epochs_done"] = metrics[-1]["epoch"]
                row["val_top1"] = metrics[-1].get("val_accuracy")
                row["images_per_second"] = recent_speed(metrics)
            row["step"] = step
            batch = config.get("batch_size")
            if row["images_per_second"] and batch and metrics:
                steps_per_epoch = metrics[-1]["step"] / metrics[-1]["epoch"]
                left = max(0.0, run.epochs * steps_per_epoch - step) * batch
                row["eta_hours"] = round(left / row["images_per_second"] / 3600, 2)
            rows.append(row)
        return rows


def recent_speed(metrics, epochs=10):
    """Images per second to expect: the median of the last `epochs` epochs'
    speeds, so that a few epochs slowed by other work beside the run do not
    set the ETA (None without a speed)."""
    speeds = [r["train_images_per_second"] for r in metrics[-epochs:]
              if r.get("train_images_per_second")]
    return round(statistics.median(speeds), 1) if speeds else None


def format_status(rows):
    lines = []
    for r in rows:
        top1 = "-" if r["val_top1"] is None else f"{100 * r['val_top1']:.2f}%"
        speed = "-" if r["images_per_second"] is None else f"{r['images_per_second']:.0f} img/s"
        eta = "-" if r["eta_hours"] is None else f"{r['eta_hours']:.1f} h"
        target = "" if r["target_top1"] is None else f", target {100 * r['target_top1']:.1f}%"
        lines.append(f"{r['name']:<34} {r['state']:<12} epochs {r['epochs_done'] or 0}/"
                     f"{r['epochs_planned']}, val top-1 {top1}, {speed}, ETA {eta}{target}")
    return "\n".join(lines)


def pilot_table(folder):
    """Markdown table of every pilot record in `folder`."""
    lines = ["# Recipe pilots: the figures", "",
             "Generated by the campaign (`zoo.campaign.pilot_table`) from the records beside "
             "this file. Top-1 is on held-out training images, never on the test set.", "",
             "| pilot | model | model args | epochs | of a schedule of | batch | lr | "
             "weight decay | label smoothing | EMA | precision | held-out top-1 | "
             "EMA top-1 | img/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(folder, name)) as f:
            record = json.load(f)
        c, final = record["config"], record["final"]
        speeds = [r.get("train_images_per_second") or 0 for r in record["epochs"]]
        ema = final.get("ema_accuracy")
        precisions = sorted({s["precision"] for s in record["history"]["segments"]})
        lines.append(
            f"| {record['run']['name']} | {c['model']} | "
            f"{json.dumps(c['model_args']) if c.get('model_args') else '-'} | "
            f"{len(record['epochs'])} | {c.get('schedule_epochs') or len(record['epochs'])} | "
            f"{c['batch_size']} | {c['learning_rate']} | {c.get('weight_decay')} | "
            f"{c.get('label_smoothing', 0)} | "
            f"{c.get('ema_decay') or '-'} | {', '.join(precisions)} | "
            f"{100 * final['accuracy']:.2f}% | "
            f"{'-' if ema is None else f'{100 * ema:.2f}%'} | "
            f"{max(speeds):.0f} |")
    return "\n".join(lines) + "\n"


def _read_json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _checkpoint_step(run_dir):
    """The step of the latest checkpoint in a run directory, 0 if none."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _describe_warm_start(warm_start):
    """The weights a run starts from: file, sha256 and, for a shipped
    checkpoint, its manifest entry's metrics and training."""
    if not warm_start:
        return None
    from zoo import pretrained

    path = training.resolve_weights(warm_start)
    described = {"from": warm_start, "file": os.path.basename(path),
                 "sha256": pretrained.sha256(path)}
    try:
        entry = pretrained.info(warm_start)
    except (KeyError, ValueError):
        return described
    described.update(top1=entry["metrics"]["top1"], training={
        k: entry["training"].get(k) for k in ("recipe", "epochs", "steps", "precision",
                                              "train_seconds", "code_commit", "hardware")})
    # A checkpoint that was itself warm-started counts the epochs before it,
    # and keeps what it started from: the chain back to the first run.
    history = entry["training"].get("history") or {}
    if history.get("epochs_total"):
        described["epochs_total"] = history["epochs_total"]
    if history.get("warm_start"):
        described["warm_start"] = history["warm_start"]
    return described


def _history_for_manifest(history, run):
    """The history the manifest keeps: the segments without the hardware's
    repetition, the warm start, the plan's choices."""
    return {"warm_start": history.get("warm_start"), "started": history.get("started"),
            "finished": history.get("finished"), "ship": run.ship,
            "segments": history["segments"],
            "train_hours": round(sum(s["seconds"] for s in history["segments"]) / 3600, 2),
            "epochs_total": run.epochs + _epochs_before(history.get("warm_start"))}


def _epochs_before(warm_start):
    """Epochs of training the warm-start weights had (0 for none)."""
    warm_start = warm_start or {}
    return warm_start.get("epochs_total") or warm_start.get("training", {}).get("epochs") or 0


def expected_finish(rows):
    """Hours of training left for the whole plan at the measured speeds (runs
    without a speed yet are left out)."""
    return round(sum(r["eta_hours"] for r in rows if r.get("eta_hours")), 1)


__all__ = ["Campaign", "PlannedRun", "PlanError", "read_plan", "write_snapshot",
           "restore_snapshot", "latest_snapshot", "format_status", "pilot_table",
           "recent_speed", "SNAPSHOT_SECONDS"]
