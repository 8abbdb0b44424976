"""Robustness measurement (zoo.research.robustness): corruptions, attacks, records."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.conftest import REPO_ROOT, shared_data_dir
from zoo import data, pretrained
from zoo.research import robustness

NAME = "resnet-32-cifar10"


@pytest.fixture(scope="module")
def test_split():
    return data.load("cifar10", "test", data_dir=shared_data_dir())


@pytest.fixture(scope="module")
def images(test_split):
    x, y, _ = robustness.subset(test_split, 2000)
    return x[:40], y[:40]


@pytest.mark.parametrize("corruption", robustness.CORRUPTIONS)
def test_each_corruption_is_deterministic_grows_with_severity_and_is_the_identity_at_0(
        corruption, images):
    x, _ = images
    np.testing.assert_array_equal(robustness.corrupt(x, corruption, 0), x)
    distortion = []
    for severity in robustness.SEVERITIES:
        once = robustness.corrupt(x, corruption, severity)
        assert once.dtype == np.uint8 and once.shape == x.shape
        np.testing.assert_array_equal(once, robustness.corrupt(x, corruption, severity))
        distortion.append(np.abs(once.astype(int) - x).mean())
    assert distortion[0] > 0
    assert all(b >= a for a, b in zip(distortion, distortion[1:])), distortion
    if "noise" in corruption:  # the seed, and only the seed, changes the draw
        assert not np.array_equal(robustness.corrupt(x, corruption, 3, seed=1),
                                  robustness.corrupt(x, corruption, 3))


def test_corruptions_refuse_bad_input(images):
    x, _ = images
    with pytest.raises(ValueError, match="Unknown corruption 'fog'"):
        robustness.corrupt(x, "fog", 1)
    with pytest.raises(ValueError, match="severity must be 0-5"):
        robustness.corrupt(x, "contrast", 6)
    with pytest.raises(ValueError, match="uint8 images"):
        robustness.corrupt(x.astype(np.float32), "contrast", 1)


def test_the_subset_is_fixed_and_the_same_for_every_model(test_split):
    x, y, indices = robustness.subset(test_split, 2000)
    again = robustness.subset(test_split, 2000)[2]
    np.testing.assert_array_equal(indices, again)
    assert len(set(indices.tolist())) == 2000 and len(x) == len(y) == 2000
    # Spread over the split, not its first images.
    assert indices.max() > 9000 and np.all(np.bincount(y, minlength=10) > 150)


@pytest.fixture(scope="module")
def twins():
    """The shipped ResNet-32 as probabilities and as logits (plain autodiff)."""
    return (zoo.load(NAME, reversible=False),
            zoo.load(NAME, reversible=False, classifier_activation=None))


def _loss(logits_model, x, y):
    return float(tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(
        y, logits_model(tf.constant(x, tf.float32), training=False), from_logits=True)))


def test_attacks_raise_the_loss_and_stay_in_the_epsilon_ball(twins, images):
    _, logits = twins
    x, y = images
    clean = _loss(logits, x, y)
    fgsm = robustness.attack(logits, x, y, 2, steps=0)
    pgd = robustness.attack(logits, x, y, 2, steps=10)
    for adversarial in (fgsm, pgd):
        assert np.abs(adversarial - x.astype(np.float32)).max() <= 2 + 1e-4
        assert adversarial.min() >= 0 and adversarial.max() <= 255
    assert clean < _loss(logits, fgsm, y) < _loss(logits, pgd, y)
    # Deterministic: the random start is seeded.
    np.testing.assert_array_equal(pgd, robustness.attack(logits, x, y, 2, steps=10))


def test_classes_come_from_one_traced_forward_and_equal_predicts(twins, images):
    model, logits = twins
    x, _ = images
    expected = np.argmax(model.predict(x.astype(np.float32), verbose=0), axis=-1)
    # 40 images in batches of 16: the last batch is short.
    np.testing.assert_array_equal(robustness.predicted_classes(model, x, batch_size=16),
                                  expected)
    # Traced once per model, not once per call (a measurement makes ~90 calls).
    assert robustness._gradient_fn(logits) is robustness._gradient_fn(logits)
    assert robustness._traced(model, "forward", None) is robustness._traced(
        model, "forward", None)


def test_the_twins_input_gradients_equal_the_reversible_engines(images):
    x, y = images
    x, y = x[:4], y[:4]
    name = "hamiltonian-74-cifar10"
    twin = zoo.load(name, reversible=False, classifier_activation=None)
    engine = zoo.load(name, reversible=True, classifier_activation=None)
    g_twin, loss_twin = robustness.input_gradient(twin, x, y)
    g_engine, loss_engine = robustness.input_gradient(engine, x, y)
    assert loss_twin == pytest.approx(loss_engine, rel=1e-5)
    # float32: the engine rebuilds each input from its output, rounding differently.
    np.testing.assert_allclose(g_engine, g_twin, rtol=0, atol=1e-3 * np.abs(g_twin).max())


def test_a_small_measurement_has_every_figure_and_its_checks(twins, test_split):
    model, logits = twins
    record = robustness.measure(model, logits, test_split, images=60, attack_images=20,
                                check_images=10)
    assert record["protocol"]["images"] == 60 and record["protocol"]["attack_images"] == 20
    assert set(record["corruptions"]) == set(robustness.CORRUPTIONS)
    assert all(len(v) == 5 for v in record["corruptions"].values())
    assert record["mean_corruption_accuracy"] == pytest.approx(
        np.mean(list(record["corruptions"].values())))
    for attack in ("fgsm", "pgd"):
        assert list(record["adversarial"][attack]) == ["1/255", "2/255", "4/255"]
    assert record["checks"]["images"] == 10 and len(record["checks"]) == 5
    json.dumps(record)


def _measured():
    manifest = pretrained.read_manifest(os.path.join(REPO_ROOT, "checkpoints", "manifest.json"))
    return sorted(name for name, entry in manifest["checkpoints"].items()
                  if entry.get("robustness"))


def test_every_shipped_checkpoint_has_a_robustness_record():
    assert _measured() == zoo.list_models(pretrained=True)
    for name in _measured():
        record = zoo.info(name)["robustness"]
        assert record["protocol"]["images"] >= 2000
        assert record["protocol"]["attack_images"] >= 1000
        assert record["clean_top1"] == pytest.approx(
            zoo.info(name)["metrics"]["top1"], abs=0.03)


@pytest.mark.parametrize("name", _measured())
def test_the_recorded_figures_reproduce_on_a_subset(name, test_split):
    record = zoo.info(name)["robustness"]
    model = zoo.load(name, reversible=False)
    logits = zoo.load(name, reversible=False, classifier_activation=None)
    found = robustness.checks(model, logits, test_split, record["checks"]["images"],
                              record["protocol"]["seed"], record["protocol"]["images"])
    for key, value in record["checks"].items():
        # One image may fall the other way with other kernels' rounding.
        assert found[key] == pytest.approx(value, abs=1.01 / record["checks"]["images"]), key


def test_the_report_has_a_row_and_a_line_per_measured_model(tmp_path):
    manifest = pretrained.read_manifest(os.path.join(REPO_ROOT, "checkpoints", "manifest.json"))
    paths = robustness.write_report(manifest, str(tmp_path))
    table = open(paths["table"]).read()
    for name in _measured():
        assert f"| {name} |" in table and os.path.exists(paths[name])
    assert os.path.getsize(paths["corruptions"]) > 10_000
    assert os.path.getsize(paths["attacks"]) > 10_000


def test_the_masking_diagnosis_compares_stronger_and_transferred_attacks(twins, test_split):
    other = "midpoint-26.cifar10_preview"
    models = {NAME: twins, other: (zoo.load(other, reversible=False),
                                   zoo.load(other, reversible=False, classifier_activation=None))}
    found = robustness.diagnose_attacks(models, test_split, images=6)
    assert found["images"] == 6 and found["epsilon"] == "2/255"
    for name, figures in found["models"].items():
        # More steps and more starts can only find more adversarial images.
        assert figures["pgd50_3_starts"] <= figures["pgd50"] + 1e-9
        assert list(figures["transfer_from"]) == [n for n in models if n != name]
