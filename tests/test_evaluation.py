"""Evaluation: metrics against hand-computed values, the report files, the CLI."""

import glob
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from tests.helpers import training_run_directory
from zoo import data, evaluation

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NAMES = ["a", "b", "c", "d", "e", "f"]
# The probability vector the model outputs for each image code. Values in a
# row are distinct so that no ranking depends on tie-breaking.
TABLE = np.array([
    [0.50, 0.20, 0.12, 0.08, 0.06, 0.04],  # code 0: predicts a, lowest f
    [0.04, 0.55, 0.15, 0.11, 0.09, 0.06],  # code 1: predicts b, lowest a
    [0.10, 0.05, 0.40, 0.25, 0.12, 0.08],  # code 2: predicts c, lowest b
    [0.03, 0.17, 0.30, 0.35, 0.09, 0.06],  # code 3: predicts d, lowest a
], dtype=np.float32)
# (true label, image code) per example. Class e has no examples.
EXAMPLES = [
    (0, 0),  # a -> a   right; top-5 yes; p(true) 0.50
    (0, 1),  # a -> b   wrong; a is last of 6, top-5 no; p 0.04
    (1, 1),  # b -> b   right; p 0.55
    (1, 2),  # b -> c   wrong; b is last, top-5 no; p 0.05
    (2, 3),  # c -> d   wrong; top-5 yes; p 0.30
    (2, 2),  # c -> c   right; p 0.40
    (3, 3),  # d -> d   right; p 0.35
    (5, 0),  # f -> a   wrong; f is last, top-5 no; p 0.04
    (5, 3),  # f -> d   wrong; top-5 yes; p 0.06
]
EXPECTED_TOP1 = 4 / 9
EXPECTED_TOP5 = 6 / 9
EXPECTED_LOSS = -np.mean(np.log([0.50, 0.04, 0.55, 0.05, 0.30, 0.40, 0.35, 0.04, 0.06]))
EXPECTED_PER_CLASS = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 1.0, "e": None, "f": 0.0}
EXPECTED_CONFUSION = [
    # predicted: a  b  c  d  e  f
    [1, 1, 0, 0, 0, 0],  # true a
    [0, 1, 1, 0, 0, 0],  # true b
    [0, 0, 1, 1, 0, 0],  # true c
    [0, 0, 0, 1, 0, 0],  # true d
    [0, 0, 0, 0, 0, 0],  # true e
    [1, 0, 0, 1, 0, 0],  # true f
]


class CodeLookup(keras.layers.Layer):
    """Reads the code in an image's first pixel and outputs that row of a table."""

    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.table = np.asarray(table, dtype=np.float32)

    def call(self, images):
        codes = keras.ops.cast(images[:, 0, 0, 0], "int32")
        return keras.ops.take(keras.ops.convert_to_tensor(self.table), codes, axis=0)


def lookup_model(table=TABLE, image_shape=(4, 4, 1)):
    inputs = keras.Input(shape=image_shape)
    return keras.Model(inputs, CodeLookup(table)(inputs), name="lookup")


def known_split(examples=EXAMPLES, names=NAMES, image_shape=(4, 4, 1)):
    labels = np.array([label for label, _ in examples], dtype=np.int64)
    codes = np.array([code for _, code in examples], dtype=np.uint8)
    images = np.broadcast_to(codes[:, None, None, None], (len(codes),) + image_shape).copy()
    return data.Split(images, labels, list(names), "known", "test", "in-memory")


def assert_known_metrics(report, num_examples=9):
    assert report["num_examples"] == num_examples
    assert report["top1"] == EXPECTED_TOP1
    assert report["top5"] == EXPECTED_TOP5
    assert report["top5_k"] == 5
    assert report["loss"] == pytest.approx(EXPECTED_LOSS, rel=1e-6)
    assert report["per_class_accuracy"] == EXPECTED_PER_CLASS
    assert report["confusion_matrix"] == EXPECTED_CONFUSION
    assert report["label_names"] == NAMES


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_metrics_match_hand_computed_values(batch_size):
    # 4 leaves a partial last batch (9 = 4 + 4 + 1); 100 holds all in one.
    report = evaluation.evaluate(lookup_model(), known_split(), batch_size=batch_size)
    assert_known_metrics(report)
    assert (report["dataset"], report["split"], report["source"]) == (
        "known", "test", "in-memory")
    assert report["from_logits"] is False
    assert all(type(v) is float for v in (report["top1"], report["top5"], report["loss"]))


def test_from_logits():
    # Shifting every logit of a row by a constant leaves log-softmax unchanged,
    # so log(p) + 3 must give the metrics of p exactly (loss up to rounding).
    logits_model = lookup_model(np.log(TABLE) + 3.0)
    report = evaluation.evaluate(logits_model, known_split(), batch_size=4, from_logits=True)
    assert_known_metrics(report)
    assert report["from_logits"] is True


def test_logits_without_from_logits_raise():
    logits_model = lookup_model(np.log(TABLE) + 3.0)
    with pytest.raises(ValueError, match="from_logits=True"):
        evaluation.evaluate(logits_model, known_split())


def test_loss_clips_zero_probability():
    table = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    split = known_split([(0, 0), (1, 0)], names=["x", "y"])
    report = evaluation.evaluate(lookup_model(table), split)
    assert math.isfinite(report["loss"])
    assert report["loss"] == pytest.approx(-math.log(evaluation.EPSILON) / 2, rel=1e-6)
    assert report["top5_k"] == 2 and report["top5"] == 1.0


def test_limit_evaluates_the_first_examples():
    report = evaluation.evaluate(lookup_model(), known_split(), batch_size=2, limit=5)
    assert report["num_examples"] == 5
    # Examples 1-5 of EXAMPLES: right, wrong, right, wrong, wrong.
    assert report["top1"] == 2 / 5
    assert report["top5"] == 3 / 5
    assert sum(map(sum, report["confusion_matrix"])) == 5
    assert report["per_class_accuracy"] == {
        "a": 0.5, "b": 0.5, "c": 0.0, "d": None, "e": None, "f": None}
    assert report["loss"] == pytest.approx(
        -np.mean(np.log([0.50, 0.04, 0.55, 0.05, 0.30])), rel=1e-6)
    # A limit beyond the split evaluates all of it.
    assert_known_metrics(evaluation.evaluate(lookup_model(), known_split(), limit=1000))
    with pytest.raises(ValueError, match="limit"):
        evaluation.evaluate(lookup_model(), known_split(), limit=0)


def test_mismatched_class_count_raises():
    split = known_split([(0, 0), (1, 1)], names=["x", "y", "z", "w", "v"])
    with pytest.raises(ValueError, match=r"outputs 6 classes.* has 5 classes"):
        evaluation.evaluate(lookup_model(), split)


def test_empty_split_raises():
    with pytest.raises(ValueError, match="no examples"):
        evaluation.evaluate(lookup_model(), known_split([]))
    with pytest.raises(ValueError, match="no examples"):
        evaluation.evaluate(lookup_model(), known_split([]), limit=3)


def test_bad_labels_and_image_shape_raise():
    split = known_split([(0, 0), (7, 1)])
    with pytest.raises(ValueError, match="labels from 0 to 7"):
        evaluation.evaluate(lookup_model(), split)
    with pytest.raises(ValueError, match=r"shape \(4, 4, 1\).*\(8, 8, 1\)"):
        evaluation.evaluate(lookup_model(), known_split(image_shape=(8, 8, 1)))


def test_save_report_writes_json_and_figures(tmp_path):
    report = evaluation.evaluate(lookup_model(), known_split(), batch_size=4)
    output_dir = tmp_path / "new" / "dir"
    paths = evaluation.save_report(report, output_dir, prefix="run1")
    assert set(paths) == {"json", "confusion_matrix", "per_class_accuracy"}
    assert all(os.path.dirname(p) == str(output_dir) for p in paths.values())
    with open(paths["json"]) as f:
        assert json.load(f) == report
    for key in ("confusion_matrix", "per_class_accuracy"):
        assert paths[key].endswith(".png")
        with open(paths[key], "rb") as f:
            content = f.read()
        assert len(content) > 1000 and content.startswith(PNG_SIGNATURE)


def test_save_report_many_classes(tmp_path):
    # Above 20 classes the matrix has no counts in its cells; it must still draw.
    names = [f"class_{i}" for i in range(30)]
    table = np.eye(30, dtype=np.float32) * 0.9 + 0.1 / 30
    split = known_split([(i % 30, (i * 7) % 30) for i in range(60)], names=names,
                        image_shape=(2, 2, 1))
    report = evaluation.evaluate(lookup_model(table, (2, 2, 1)), split)
    assert report["top5_k"] == 5 and report["num_examples"] == 60
    paths = evaluation.save_report(report, tmp_path)
    with open(paths["json"]) as f:
        assert json.load(f) == report
    for key in ("confusion_matrix", "per_class_accuracy"):
        with open(paths[key], "rb") as f:
            assert f.read(8) == PNG_SIGNATURE


def spread_predictions(model, images):
    """Re-fits the classifier so that an untrained model's predictions vary.

    After per-image standardisation, random images give nearly the same
    features, and an untrained model predicts one class for all of them: then
    any evaluation gets the same accuracy. Centring and scaling the logits on
    these images spreads the predictions over the classes with clear margins,
    so the test checks every prediction, and float rounding cannot flip one.
    """
    dense = model.get_layer("predictions")
    features = keras.Model(model.inputs, dense.input).predict_on_batch(images)
    features = features.astype(np.float64)
    kernel = dense.kernel.numpy().astype(np.float64)
    kernel /= np.std((features - features.mean(axis=0)) @ kernel)
    dense.kernel.assign(kernel.astype(np.float32))
    dense.bias.assign((-features.mean(axis=0) @ kernel).astype(np.float32))


def test_command_line_tool_end_to_end(tmp_path):
    batch_size = 16  # 40 = 16 + 16 + 8: the tool's batching is exercised too
    rng = np.random.default_rng(7)
    x_test = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    y_test = np.arange(40) % 10
    model = zoo.build("hamiltonian-74-cifar10")
    spread_predictions(model, x_test)
    weights = str(tmp_path / "model.weights.h5")
    model.save_weights(weights)
    npz = str(tmp_path / "synthetic.npz")
    np.savez(npz, x_train=x_test[:10], y_train=y_test[:10], x_test=x_test, y_test=y_test)

    predicted = np.concatenate([
        np.argmax(model.predict_on_batch(x_test[i:i + batch_size]), axis=1)
        for i in range(0, 40, batch_size)])
    expected_top1 = float(np.mean(predicted == y_test))
    assert len(set(predicted.tolist())) >= 5  # the model tells the images apart
    expected_confusion = np.zeros((10, 10), int)
    np.add.at(expected_confusion, (y_test, predicted), 1)

    output_dir = tmp_path / "eval"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "tools/evaluate.py", "--model", "hamiltonian-74-cifar10",
         "--dataset", npz, "--weights", weights, "--output_dir", str(output_dir),
         "--batch_size", str(batch_size)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    [json_path] = glob.glob(str(output_dir / "*.json"))
    with open(json_path) as f:
        report = json.load(f)
    assert report["num_examples"] == 40
    assert report["top1"] == expected_top1
    assert report["confusion_matrix"] == expected_confusion.tolist()
    assert report["model"] == "hamiltonian-74-cifar10"
    assert report["weights"] == weights
    assert (report["dataset"], report["split"]) == ("synthetic", "test")
    assert len(glob.glob(str(output_dir / "*.png"))) == 2
    assert "top-1" in result.stdout and json_path in result.stdout


def test_flip_tta_averages_each_image_with_its_mirror_image():
    # The lookup reads the first pixel, so the mirror image shows the code of
    # the last column: each image below has code `left` there and `right` on
    # the other side.
    cases = [(0, 0, 2), (1, 1, 2), (2, 3, 2), (3, 2, 3), (5, 0, 3)]  # (label, left, right)
    images = np.zeros((len(cases), 4, 4, 1), np.uint8)
    for i, (_, left, right) in enumerate(cases):
        images[i, :, 0], images[i, :, -1] = left, right
    labels = np.array([c[0] for c in cases])
    split = data.Split(images, labels, list(NAMES), "mirror", "test", "in-memory")
    report = evaluation.evaluate(lookup_model(), split, batch_size=2, flip_tta=True)

    mean = (TABLE[[c[1] for c in cases]] + TABLE[[c[2] for c in cases]]) / 2
    expected_top1 = float(np.mean(mean.argmax(axis=1) == labels))
    rank = (mean > mean[np.arange(len(cases)), labels][:, None]).sum(axis=1)
    assert report["top1"] == float(np.mean(TABLE[[c[1] for c in cases]].argmax(1) == labels))
    assert report["flip_tta"] == {"top1": expected_top1, "top5": float(np.mean(rank < 5))}
    assert report["flip_tta"]["top1"] != report["top1"]  # the cases tell the two apart
    assert "flip_tta" not in evaluation.evaluate(lookup_model(), split)


def _evaluate_tool(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "tools/evaluate.py", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_pretrained_name_without_weights_evaluates_the_shipped_checkpoint(tmp_path):
    from tests.conftest import shared_data_dir

    result = _evaluate_tool("--model", "hamiltonian-74-cifar10", "--data_dir", shared_data_dir(),
                            "--limit", "200", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    [json_path] = glob.glob(str(tmp_path / "*.json"))
    report = json.load(open(json_path))
    assert report["weights"] == zoo.info("hamiltonian-74-cifar10")["weights"]["file"]
    assert report["top1"] > 0.6  # trained, not random (about 0.1)
    assert "UNTRAINED" not in result.stdout
    assert "flip TTA (not the headline)" in result.stdout and "flip_tta" in report


def test_random_weights_must_be_asked_for(tmp_path):
    result = _evaluate_tool("--model", "resnet-110-cifar100", "--output_dir", str(tmp_path))
    assert result.returncode != 0
    assert "no pretrained checkpoint" in result.stderr and "--random_weights" in result.stderr
    result = _evaluate_tool("--model", "hamiltonian-74-cifar10", "--random_weights",
                            "--weights", "x.weights.h5")
    assert result.returncode != 0 and "not both" in result.stderr


def test_weights_of_a_training_run_are_built_as_the_run_recorded(tmp_path):
    # Hamiltonian-74 at h = 0.3 has the shapes of the default h = 0.1 and
    # loads into it without complaint; only the run's record tells them apart.
    from zoo.cli.predict import load_model

    rng = np.random.default_rng(3)
    x_test = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    y_test = np.arange(24) % 10
    npz = str(tmp_path / "synthetic.npz")
    np.savez(npz, x_train=x_test[:10], y_train=y_test[:10], x_test=x_test, y_test=y_test)
    keras.utils.set_random_seed(0)
    trained = zoo.build("hamiltonian-74-cifar10", h=0.3)
    weights = training_run_directory(tmp_path, trained, "hamiltonian-74", {"h": 0.3})
    split = data.load(npz, "test")
    expected = evaluation.evaluate(trained, split)
    as_default = evaluation.evaluate(zoo.build("hamiltonian-74-cifar10", weights=weights), split)
    assert as_default["loss"] != pytest.approx(expected["loss"], rel=1e-3)  # h matters here

    model, _ = load_model("hamiltonian-74-cifar10", weights)  # what predict builds
    np.testing.assert_allclose(model.predict_on_batch(x_test), trained.predict_on_batch(x_test),
                               rtol=1e-5, atol=1e-6)

    result = _evaluate_tool("--model", "hamiltonian-74-cifar10", "--dataset", npz,
                            "--weights", weights, "--output_dir", str(tmp_path / "eval"),
                            "--noflip_tta")
    assert result.returncode == 0, result.stderr[-2000:]
    [json_path] = glob.glob(str(tmp_path / "eval" / "*.json"))
    report = json.load(open(json_path))
    assert report["loss"] == pytest.approx(expected["loss"], rel=1e-4)
    assert report["model_args"] == {"h": 0.3}
    assert "built with: h=0.3" in result.stdout

    # --model_args, given, wins over the record.
    result = _evaluate_tool("--model", "hamiltonian-74-cifar10", "--dataset", npz,
                            "--weights", weights, "--output_dir", str(tmp_path / "eval01"),
                            "--noflip_tta", "--model_args", '{"h": 0.1}')
    assert result.returncode == 0, result.stderr[-2000:]
    [json_path] = glob.glob(str(tmp_path / "eval01" / "*.json"))
    assert json.load(open(json_path))["loss"] == pytest.approx(as_default["loss"], rel=1e-4)


def test_weights_recorded_as_another_architecture_or_bad_model_args_are_refused(tmp_path):
    from zoo.cli import parse_model_args
    from zoo.cli.predict import load_model
    from zoo.errors import UserError

    weights = training_run_directory(tmp_path, zoo.build("resnet-32-cifar10"), "resnet-32", {})
    with pytest.raises(UserError, match="was trained as resnet-32.*not as hamiltonian-74-cifar10"):
        load_model("hamiltonian-74-cifar10", weights)
    assert parse_model_args(None) is None
    assert parse_model_args('{"h": 0.3}') == {"h": 0.3}
    with pytest.raises(UserError, match="not JSON"):
        parse_model_args("{h: 0.3}")
    with pytest.raises(UserError, match="JSON object"):
        parse_model_args("[0.3]")
    with pytest.raises(UserError, match="goes with --weights"):
        load_model("hamiltonian-74-cifar10", model_args={"h": 0.3})
