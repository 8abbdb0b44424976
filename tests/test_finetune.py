"""Fine-tuning (zoo.training.finetune, tools/finetune.py): a few steps on tiny
synthetic datasets whose images need converting (grayscale, other sizes,
alpha), so that the whole file runs in about a minute."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.conftest import REPO_ROOT
from zoo import data, errors, evaluation, pretrained
from zoo.training import finetune

PARENT = "hamiltonian-74-cifar10"
CLASSES = ["circle", "square", "stripes"]


def _images(count, shape, seed):
    """Learnable synthetic images: the class sets the mean brightness."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASSES)
    base = 60 + 70 * labels[:, None, None, None]
    images = np.clip(base + rng.normal(0, 25, (count, *shape)), 0, 255).astype(np.uint8)
    return images, labels


def _split(count, shape, split, seed):
    images, labels = _images(count, shape, seed)
    return data.Split(images, labels, CLASSES, "synthetic", split, "memory")


def _weights(layer):
    return [np.array(v.numpy(), copy=True) for v in layer.weights]


class _Snapshots(keras.callbacks.Callback):
    """Every weight of backbone and head before training and after each epoch."""

    def __init__(self):
        super().__init__()
        self.start, self.after_epoch = None, {}

    def _take(self):
        return {"backbone": _weights(self.model.get_layer(finetune.BACKBONE_LAYER)),
                "head": _weights(self.model.get_layer(finetune.HEAD_LAYER))}

    def on_train_begin(self, logs=None):
        if self.start is None:
            self.start = self._take()

    def on_epoch_end(self, epoch, logs=None):
        self.after_epoch[epoch] = self._take()


def _tool(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "tools", "finetune.py"),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO_ROOT)


@pytest.fixture(scope="module")
def tool_run(tmp_path_factory):
    """tools/finetune.py from scratch on a tiny .npz of RGBA 36×36 images,
    started first so that it runs while the library is tested."""
    tmp_path = tmp_path_factory.mktemp("tool")
    x_train, y_train = _images(30, (36, 36, 4), 0)
    x_test, y_test = _images(15, (36, 36, 4), 1)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             label_names=np.array(CLASSES))
    out = tmp_path / "out"
    process = _tool("--model", PARENT, "--dataset", path, "--output_dir", out, "--from_scratch",
                    "--head_epochs", 0, "--epochs", 1, "--batch_size", 10,
                    "--validation_freq", 0, "--progress", 0)
    # And one that must fail: every image of one class.
    one_class = tmp_path / "one_class.npz"
    np.savez(one_class, x_train=x_train, y_train=np.zeros_like(y_train), x_test=x_test,
             y_test=np.zeros_like(y_test))
    failing = _tool("--model", PARENT, "--dataset", one_class, "--output_dir",
                    tmp_path / "failed")
    yield {"process": process, "out": out, "failing": failing,
           "failed_dir": tmp_path / "failed"}
    for p in (process, failing):
        if p.poll() is None:
            p.kill()
            p.communicate()


@pytest.fixture(scope="module")
def run(tmp_path_factory, tool_run):
    """One epoch of each phase on 40 grayscale 28×28 training images."""
    output_dir = str(tmp_path_factory.mktemp("finetune"))
    train, test = _split(40, (28, 28, 1), "train", 0), _split(20, (28, 28, 1), "test", 1)
    snapshots = _Snapshots()
    # Validating only after the last epoch spares tracing an evaluation per phase.
    result = finetune.finetune(PARENT, train, test, head_epochs=1, epochs=1, batch_size=10,
                               validation_freq=2, output_dir=output_dir,
                               callbacks=[snapshots], verbose=0)
    return result, snapshots, test


def test_head_is_sized_from_the_data(run):
    result, _, _ = run
    assert result.model.output_shape == (None, len(CLASSES))
    assert result.model.input_shape == (None, *zoo.info(PARENT)["input"]["shape"])
    assert result.model.get_layer(finetune.HEAD_LAYER).kernel.shape[-1] == len(CLASSES)
    assert result.card["head"]["classes"] == len(CLASSES)
    assert result.card["labels"] == CLASSES


def test_phase_one_trains_only_the_head(run):
    _, snapshots, _ = run
    loaded = zoo.load(PARENT, include_top=False, pooling="avg")
    after = snapshots.after_epoch[0]
    assert len(after["backbone"]) == len(loaded.weights) > 0
    # Bit-identical, moving statistics included: frozen means inference mode.
    for variable, before, now in zip(loaded.weights, snapshots.start["backbone"],
                                     after["backbone"]):
        np.testing.assert_array_equal(variable.numpy(), before, err_msg=variable.path)
        np.testing.assert_array_equal(before, now, err_msg=variable.path)
    for before, now in zip(snapshots.start["head"], after["head"]):
        assert not np.array_equal(before, now)


def test_phase_two_trains_the_backbone(run):
    result, snapshots, _ = run
    backbone = result.model.get_layer(finetune.BACKBONE_LAYER)
    trainable = [v.trainable for v in backbone.weights]
    assert sum(trainable) > 0
    changed = [not np.array_equal(a, b) for a, b in zip(snapshots.after_epoch[0]["backbone"],
                                                       snapshots.after_epoch[1]["backbone"])]
    assert all(c for c, t in zip(changed, trainable) if t)
    # The batch norms ran on batch statistics in phase two.
    assert any(c for c, t in zip(changed, trainable) if not t)


def test_saved_model_reloads_with_the_same_predictions(run):
    result, _, test = run
    model = pretrained.load_finetuned(result.output_dir)
    images, steps = data.prepare_images(test.images, model.input_shape[1:])
    assert steps
    np.testing.assert_allclose(model(images, training=False).numpy(),
                               result.model(images, training=False).numpy(), rtol=0, atol=1e-5)


def test_card_names_the_parent_and_reports_the_run(run):
    result, _, _ = run
    out = result.output_dir
    for name in ("finetuned.weights.h5", "model_card.json", "model_card.md", "results.json",
                 "metrics.json", "metrics.csv", "eval.json", "curves.png"):
        assert os.path.isfile(os.path.join(out, name)), name
    card = pretrained.read_card(out)
    assert card == json.loads(json.dumps(result.card))
    parent = zoo.info(PARENT)
    assert card["parent"]["name"] == PARENT
    assert card["parent"]["weights"] == {"file": parent["weights"]["file"],
                                         "sha256": parent["weights"]["sha256"]}
    assert card["parent"]["metrics"]["top1"] == parent["metrics"]["top1"]
    metrics = card["metrics"]
    assert metrics["split"] == "test" and metrics["images"] == 20
    assert metrics["top1"] == result.report["top1"]
    assert [p["phase"] for p in card["training"]["phases"]] == ["head", "all"]
    assert card["training"]["epochs"] == 2 and card["training"]["steps"] == 8
    assert card["training"]["hardware"]["cpu_count"] and "code_commit" in card["training"]
    assert card["training"]["train_seconds"] > 0 and card["training"]["wall_seconds"] > 0
    assert any("grayscale" in s for s in card["input"]["conversion"])
    assert card["input"]["dataset_shape"] == [28, 28, 1]
    markdown = open(os.path.join(out, "model_card.md")).read()
    assert parent["weights"]["sha256"] in markdown and card["weights"]["sha256"] in markdown
    with open(os.path.join(out, "metrics.json")) as f:
        rows = json.load(f)
    assert [(r["epoch"], r["phase"]) for r in rows] == [(1, "head"), (2, "all")]
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert "val_accuracy" not in rows[0] and rows[1]["val_accuracy"] == pytest.approx(
        card["metrics"]["top1"], abs=1e-6)


def test_the_log_gives_the_reports_cross_entropy_and_no_top5_for_three_classes(run):
    result, _, test = run
    last = result.history[-1]
    # Keras' val_loss adds the penalties (model.losses); val_cross_entropy is
    # the cross-entropy alone, the figure of the report and the card. Keras
    # takes it from the softmax's logits; the report from the probabilities,
    # clipped at evaluation.EPSILON as Keras clips probabilities, so the two
    # differ where a true-class probability falls below 1e-7, as it does
    # in this one-epoch fine-tune on toy images.
    images, _ = data.prepare_images(test.images, zoo.info(PARENT)["input"]["shape"])
    probabilities = result.model.predict(images, verbose=0).astype(np.float64)
    true_class = probabilities[np.arange(len(test.labels)), test.labels]
    tiny = np.finfo(np.float32).tiny
    assert last["val_cross_entropy"] == pytest.approx(
        np.mean(-np.log(np.maximum(true_class, tiny))), rel=1e-3)
    assert result.report["loss"] == pytest.approx(
        np.mean(-np.log(np.clip(true_class, evaluation.EPSILON, 1.0))), abs=1e-6)
    assert last["val_loss"] > last["val_cross_entropy"] + 1e-3
    # Top-k of 3 classes with k >= 3 is always 100%: neither logged nor carded.
    assert not any("top" in key for row in result.history for key in row)
    markdown = open(os.path.join(result.output_dir, "model_card.md")).read()
    assert "| top-1 accuracy |" in markdown and "| top-3 accuracy |" not in markdown


def test_images_are_converted_to_the_parents_input():
    gray = _images(3, (20, 24, 1), 0)[0][..., 0]  # no channel axis
    images, steps = data.prepare_images(gray, (32, 32, 3))
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    assert len(steps) == 2

    rgba, _ = _images(2, (32, 32, 4), 1)
    images, steps = data.prepare_images(rgba, (32, 32, 3))
    np.testing.assert_array_equal(images, rgba[..., :3])
    assert steps == ["alpha channel dropped"]

    rgb, _ = _images(2, (32, 32, 3), 2)
    images, steps = data.prepare_images(rgb, (32, 32, 3))
    np.testing.assert_array_equal(images, rgb)
    assert steps == []

    with pytest.raises(errors.ConversionError, match="5 channels"):
        data.prepare_images(np.zeros((1, 32, 32, 5), np.uint8), (32, 32, 3))


@pytest.mark.parametrize("change, message", [
    ({"model": "hamiltonian-75-cifar10"}, "Unknown model"),
    ({"model": "hamiltonian-74"}, "No pretrained weights"),
    ({"labels": 0}, "at least two"),
    ({"batch_size": 64}, "larger than the 40"),
    ({"head_epochs": 0, "epochs": 0}, "Nothing to train"),
    ({"learning_rate": -1.0}, "learning_rate must be positive"),
    ({"test_names": ["a", "b", "c", "d"]}, "different classes"),
])
def test_bad_input_fails_clearly_before_training(change, message, tmp_path):
    train, test = _split(40, (32, 32, 3), "train", 0), _split(20, (32, 32, 3), "test", 1)
    if "labels" in change:
        train.labels[:] = change.pop("labels")
    if "test_names" in change:
        test.label_names = change.pop("test_names")
    model = change.pop("model", PARENT)
    with pytest.raises(errors.FinetuneError, match=message):
        finetune.finetune(model, train, test, output_dir=str(tmp_path), verbose=0,
                          **{"batch_size": 10, **change})
    assert not os.listdir(tmp_path)


def test_load_finetuned_needs_a_finished_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_card.json"):
        pretrained.load_finetuned(tmp_path)


def test_tool_runs_end_to_end_on_an_npz(tool_run):
    process, out = tool_run["process"], tool_run["out"]
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    sha256 = zoo.info(PARENT)["weights"]["sha256"]
    assert sha256[:12] in stdout
    card = pretrained.read_card(out)
    assert card["parent"]["weights"]["sha256"] == sha256
    assert card["from_scratch"] and not card["parent"]["weights_used"]
    assert [p["phase"] for p in card["training"]["phases"]] == ["scratch"]
    assert card["training"]["phases"][0]["learning_rate"] == finetune.SCRATCH_LEARNING_RATE
    assert card["metrics"]["images"] == 15 and card["dataset"]["train_images"] == 30
    assert "alpha channel dropped" in card["input"]["conversion"]
    assert "tools/finetune.py" in card["training"]["command"]
    model = pretrained.load_finetuned(out)
    assert model.output_shape == (None, len(CLASSES))
    # From scratch: the stem is not the checkpoint's.
    loaded = zoo.load(PARENT, include_top=False, pooling="avg")
    stem = model.get_layer(finetune.BACKBONE_LAYER).network.get_layer("stem_conv")
    assert not np.array_equal(stem.kernel.numpy(), loaded.get_layer("stem_conv").kernel.numpy())


def test_tool_fails_clearly_on_a_dataset_of_one_class(tool_run):
    stdout, stderr = tool_run["failing"].communicate(timeout=300)
    assert tool_run["failing"].returncode != 0
    assert "finetune.py: error:" in stderr and "at least two" in stderr
    assert "Traceback" not in stderr
    assert not os.path.exists(tool_run["failed_dir"])


def test_predict_takes_a_finetuning_output_directory(tool_run, tmp_path):
    process, out = tool_run["process"], tool_run["out"]
    if process.poll() is None:
        process.communicate(timeout=600)
    assert process.returncode == 0
    images, _ = _images(2, (36, 36, 3), 5)
    for i, image in enumerate(images):
        (tmp_path / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    tool = [sys.executable, os.path.join(REPO_ROOT, "tools", "predict.py")]
    proc = subprocess.run([*tool, "--finetuned", str(out), str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["0.png", "1.png"]
    assert all(line.split(": ")[1].split(" ")[0] in CLASSES for line in lines)
    # The weights file alone is not enough; the tool says what to use.
    card = pretrained.read_card(out)
    proc = subprocess.run([*tool, "--weights", str(out / card["weights"]["file"]), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode != 0 and f"--finetuned {out}" in proc.stderr


def test_evaluate_takes_a_finetuning_output_directory(tool_run, tmp_path):
    process, out = tool_run["process"], tool_run["out"]
    if process.poll() is None:
        process.communicate(timeout=600)
    x_test, y_test = _images(12, (36, 36, 4), 2)  # RGBA 36×36, as the run trained on
    path = tmp_path / "eval.npz"
    np.savez(path, x_train=x_test, y_train=y_test, x_test=x_test, y_test=y_test,
             label_names=np.array(CLASSES))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", "evaluate.py"),
                           "--finetuned", str(out), "--dataset", str(path), "--output_dir",
                           str(tmp_path / "eval")], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(next((tmp_path / "eval").glob("*.json")).read_text())
    assert report["num_examples"] == 12 and report["label_names"] == CLASSES
    model = pretrained.load_finetuned(out)
    images, _ = data.prepare_images(x_test, model.input_shape[1:])
    expected = float(np.mean(model.predict(images, verbose=0).argmax(1) == y_test))
    assert report["top1"] == pytest.approx(expected)


def test_a_diverging_fine_tuning_stops_in_the_shared_loop():
    """train and finetune share fit_epoch: the same check, the same error."""
    train, test = _split(40, (32, 32, 3), "train", 0), _split(20, (32, 32, 3), "test", 1)

    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                kernel = self.model.get_layer(finetune.HEAD_LAYER).kernel
                kernel.assign(kernel * np.nan)

    with pytest.raises(errors.TrainingDiverged,
                       match=r"became nan at epoch 1, batch 2 .*the head phase"):
        finetune.finetune(PARENT, train, test, head_epochs=1, epochs=0, batch_size=10,
                          verbose=0, callbacks=[Poison()])


def test_a_fine_tune_keeps_the_regularisation_its_parent_was_trained_with(run):
    result, _, _ = run
    trained = zoo.info(PARENT)["training"]
    settings = {**trained["recipe_settings"], **trained["overrides"]}
    assert result.card["training"]["weight_decay"] == settings["weight_decay"]
    assert result.card["training"]["smoothness_decay"] == settings["smoothness_decay"]


def test_the_parents_regularisation_comes_from_its_overrides_then_its_recipe():
    entry = {"training": {"recipe_settings": {"weight_decay": 5e-4, "smoothness_decay": 2e-4},
                          "overrides": {"smoothness_decay": 0.0, "epochs": 120}}}
    assert finetune.parent_regularisation(entry) == (5e-4, 0.0)
    assert finetune.parent_regularisation(entry, smoothness_decay=1e-4) == (5e-4, 1e-4)
    assert finetune.parent_regularisation(entry, weight_decay=0.0) == (0.0, 0.0)
    # An entry that does not say: the "cpu" recipe's, as before.
    assert finetune.parent_regularisation({}) == (finetune.WEIGHT_DECAY,
                                                  finetune.SMOOTHNESS_DECAY)
    with pytest.raises(errors.FinetuneError, match="smoothness_decay must be non-negative"):
        finetune.finetune(PARENT, _split(20, (32, 32, 3), "train", 0), smoothness_decay=-1.0)
