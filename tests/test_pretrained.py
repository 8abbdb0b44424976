"""Shipped checkpoints, the manifest, zoo.load and MODEL_CARDS.md."""

import copy
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from tests.conftest import REPO_ROOT, shared_data_dir
from tests.helpers import run_preset_test
from zoo import model_cards, pretrained
from zoo.research import analysis
from zoo.models import pde
from zoo.pretrained import manifest
from zoo.publish import entries

MANIFEST = pretrained.read_manifest(os.path.join(REPO_ROOT, "checkpoints", "manifest.json"))
NAMES = sorted(MANIFEST["checkpoints"])
SAMPLES = os.path.join(REPO_ROOT, "tools", "samples")
FIRST = NAMES[0]

REQUIRED = {
    "name", "architecture", "family", "builder_args", "dataset", "input", "output", "labels",
    "parameters", "weights", "metrics", "checks", "memory", "training", "paper", "license",
    "citations",
}


def test_manifest_lists_the_shipped_checkpoints():
    assert NAMES, "no checkpoint in the manifest"
    assert zoo.list_models(pretrained=True) == NAMES
    assert zoo.list_models("hamiltonian-*", pretrained=True) == [
        n for n in NAMES if n.startswith("hamiltonian-")]
    shipped = sorted(f for f in os.listdir(os.path.join(REPO_ROOT, "checkpoints"))
                     if f.endswith(".weights.h5"))
    assert shipped == sorted(MANIFEST["checkpoints"][n]["weights"]["file"] for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_manifest_entry_is_complete_and_consistent(name):
    entry = zoo.info(name)
    assert REQUIRED <= set(entry), REQUIRED - set(entry)
    assert entry["name"] == name
    architecture, dataset = zoo.registry.split_name(name)
    assert entry["architecture"] == architecture.name and entry["dataset"]["name"] == dataset
    assert len(entry["labels"]) == entry["builder_args"]["classes"] == entry["output"]["shape"][0]
    assert 0 < entry["metrics"]["top1"] <= entry["metrics"]["top5"] <= 1
    assert entry["metrics"]["images"] > 0 and entry["metrics"]["split"] == "test"
    assert len(entry["weights"]["sha256"]) == 64
    assert entry["training"]["code_commit"] and entry["training"]["hardware"]
    assert entry["citations"] and entry["license"]
    # The figure the card compares against is the architecture's own paper's.
    assert entry["paper"] == architecture.paper_result(dataset)
    record = json.load(open(os.path.join(REPO_ROOT, entry["training"]["record"], "results.json")))
    assert entry["metrics"]["images"] == record["test_examples"]
    assert entry["training"]["steps"] == record["steps"]
    # A resumed run's record holds only the last part's wall time.
    if record.get("resumed_from"):
        assert entry["training"]["wall_seconds"] is None
    else:
        assert entry["training"]["wall_seconds"] == record["wall_seconds_this_session"]
    model = zoo.build(name)
    assert model.count_params() == entry["parameters"]["total"]


def test_info_returns_a_copy():
    entry = zoo.info(FIRST)
    entry["metrics"]["top1"] = -1
    assert zoo.info(FIRST)["metrics"]["top1"] != -1


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_hash_matches_and_predictions_are_the_recorded_ones(name):
    run_preset_test(name, SAMPLES)


@pytest.mark.parametrize("name", NAMES)
def test_recorded_accuracy_matches_a_fresh_evaluation(name):
    entry = zoo.info(name)
    subset = entry["checks"]["subset"]
    model = zoo.load(name)
    fresh = entries.subset_top1(model, entry["dataset"]["name"], shared_data_dir(),
                                   subset["first"])
    # Two images of the 1,000 may flip with other CPUs' rounding.
    assert abs(fresh - subset["top1"]) <= 2 / subset["first"]
    # The subset agrees with the full test-set figure within sampling error.
    assert abs(subset["top1"] - entry["metrics"]["top1"]) < 0.04


def test_include_top_false_gives_the_documented_features():
    full = zoo.load(FIRST)
    features = zoo.load(FIRST, include_top=False)
    pooled = zoo.load(FIRST, include_top=False, pooling="avg")
    height, width, _ = zoo.info(FIRST)["input"]["shape"]
    channels = full.get_layer("predictions").input.shape[-1]
    # The final feature map: a quarter of the resolution, the last unit's width.
    assert features.output_shape == (None, height // 4, width // 4, channels)
    assert pooled.output_shape == (None, channels)
    images = np.random.default_rng(0).integers(0, 256, (4, height, width, 3)).astype("uint8")
    inner = keras.Model(full.input, full.get_layer("final_relu").output)
    np.testing.assert_allclose(features.predict(images, verbose=0),
                               inner.predict(images, verbose=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pooled.predict(images, verbose=0),
                               inner.predict(images, verbose=0).mean(axis=(1, 2)),
                               rtol=1e-4, atol=1e-5)


def test_new_classes_keep_the_body_and_reset_the_classifier():
    full = zoo.load(FIRST)
    five = zoo.load(FIRST, classes=5, input_shape=(48, 48, 3))
    assert five.output_shape == (None, 5)
    assert five.input_shape == (None, 48, 48, 3)
    for layer in five.layers:
        if layer.weights and layer.name != "predictions":
            for a, b in zip(layer.get_weights(), full.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="pooling"):
        zoo.load(FIRST, pooling="avg")


def test_unknown_names_get_close_valid_names():
    with pytest.raises(ValueError, match=f"Did you mean '{FIRST}'"):
        zoo.load(FIRST[:-1])
    with pytest.raises(ValueError, match="No pretrained weights for 'midpoint-62-cifar100'"):
        zoo.load("midpoint-62-cifar100")
    with pytest.raises(ValueError, match="Unknown model"):
        zoo.info("no-such-net")


def _copy_weights(tmp_path):
    entry = zoo.info(FIRST)
    source = pretrained.weights_path(FIRST)
    target = tmp_path / entry["weights"]["file"]
    shutil.copyfile(source, target)
    return entry, target


def test_corrupt_weights_fail_before_loading(tmp_path):
    entry, target = _copy_weights(tmp_path)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(pretrained.ChecksumError) as error:
        zoo.load(FIRST, weights_dir=str(tmp_path))
    assert entry["weights"]["sha256"] in str(error.value) and str(target) in str(error.value)


def test_truncated_and_missing_weights_fail_clearly(tmp_path, monkeypatch):
    entry, target = _copy_weights(tmp_path)
    target.write_bytes(target.read_bytes()[:1000])
    with pytest.raises(pretrained.ChecksumError, match="1000 bytes"):
        zoo.load(FIRST, weights_dir=str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(pretrained.ENV_WEIGHTS_DIR, str(empty))
    with pytest.raises(pretrained.WeightsNotFoundError, match=entry["weights"]["file"]):
        zoo.load(FIRST)


def _manifest_elsewhere(tmp_path, monkeypatch, url):
    """A manifest in an empty directory whose entry points at `url`."""
    manifest = pretrained.read_manifest()
    manifest["checkpoints"][FIRST]["weights"]["url"] = url
    directory = tmp_path / "manifest"
    directory.mkdir()
    pretrained.write_manifest(manifest, str(directory / "manifest.json"))
    monkeypatch.setenv(pretrained.ENV_MANIFEST, str(directory / "manifest.json"))
    monkeypatch.delenv(pretrained.ENV_WEIGHTS_DIR, raising=False)


def test_weights_are_downloaded_to_the_cache_and_verified(tmp_path, monkeypatch):
    entry, source = _copy_weights(tmp_path)
    _manifest_elsewhere(tmp_path, monkeypatch, source.as_uri())
    cache = tmp_path / "cache"
    model = zoo.load(FIRST, cache_dir=str(cache))
    assert (cache / entry["weights"]["file"]).exists()
    assert model.output_shape == (None, entry["builder_args"]["classes"])
    # Once cached, no download: the origin may go away.
    source.unlink()
    zoo.load(FIRST, cache_dir=str(cache))


def test_a_corrupt_download_is_removed(tmp_path, monkeypatch):
    entry, source = _copy_weights(tmp_path)
    source.write_bytes(source.read_bytes()[:-1] + b"x")
    _manifest_elsewhere(tmp_path, monkeypatch, source.as_uri())
    cache = tmp_path / "cache"
    with pytest.raises(pretrained.ChecksumError):
        zoo.load(FIRST, cache_dir=str(cache))
    assert not (cache / entry["weights"]["file"]).exists()


def test_model_cards_are_up_to_date():
    with open(os.path.join(REPO_ROOT, "MODEL_CARDS.md")) as f:
        assert f.read() == model_cards.render(MANIFEST), (
            "MODEL_CARDS.md is out of date: run python tools/model_cards.py")
    for name in NAMES:
        assert f"## {name}" in model_cards.render(MANIFEST)


def test_a_card_states_the_settings_the_run_used_not_the_recipe_defaults():
    # The campaign trains at a peak rate the recipe does not have; the card
    # once said "learning rate 0.1" of a run at 0.2.
    entry = copy.deepcopy(MANIFEST["checkpoints"][NAMES[0]])
    training = entry["training"]
    training["recipe_settings"].update(schedule="cosine", learning_rate=0.1, weight_decay=5e-4,
                                       label_smoothing=0.0, ema_decay=None)
    training["overrides"] = {"learning_rate": 0.3, "weight_decay": 2e-4,
                             "label_smoothing": 0.1, "ema_decay": 0.999}
    card = model_cards.render_card(entry)
    assert "learning rate 0.3 to 0" in card and "learning rate 0.1 " not in card
    assert "weight decay 0.0002," in card and "0.0005" not in card
    assert "label smoothing 0.1" in card and "(decay 0.999)" in card


def test_a_warm_started_card_counts_the_epochs_behind_its_weights():
    entry = copy.deepcopy(MANIFEST["checkpoints"][NAMES[0]])
    entry["paper"] = {"top1": 92.76, "source": "a paper"}
    entry["training"]["epochs"] = 100
    entry["training"]["history"] = None
    assert "this run trained 100 epochs." in model_cards.render_card(entry)
    entry["training"]["history"] = {"epochs_total": 174, "segments": [], "train_hours": 1.0}
    assert "this run trained 100 epochs, 174 in all with those of the checkpoints it started from." in (
        model_cards.render_card(entry))


def test_a_card_says_how_far_apart_neighbouring_kernels_are_and_flags_a_tied_start():
    entry = copy.deepcopy(MANIFEST["checkpoints"][NAMES[0]])
    entry["kernel_drift"] = {"min": 0.05, "mean": 0.08, "max": 0.14}
    entry["training"]["tied_start"] = True
    card = model_cards.render_card(entry)
    assert "differ by 0.05 to 0.14 (mean 0.08) of their norm" in card
    assert "Trained from a weight-tied start" in card
    entry["training"].pop("tied_start")
    # (a card's notes may still tell of earlier weights' tied start)
    assert "Trained from a weight-tied start" not in model_cards.render_card(entry)
    # Every shipped checkpoint has the figure, measured on its weights.
    for name in NAMES:
        drift = MANIFEST["checkpoints"][name]["kernel_drift"]
        assert 0 <= drift["min"] <= drift["mean"] <= drift["max"] < 2, name
    from zoo.publish import entries

    assert entries.kernel_drift_range(zoo.load(NAMES[0])) == MANIFEST["checkpoints"][NAMES[0]][
        "kernel_drift"]


def test_a_card_counts_every_epoch_behind_the_weights_it_replaces():
    entry = copy.deepcopy(MANIFEST["checkpoints"][NAMES[0]])
    entry["supersedes"] = {"file": "old.weights.h5", "top1": 0.9, "commit": "abc",
                           "training": {"recipe": "campaign", "epochs": 60, "epochs_total": 74}}
    card = model_cards.render_card(entry)
    assert "(90.00% top-1, 74 epochs in all, the last 60 of `campaign`)" in card
    # Weights from one run, or a manifest written before epochs_total.
    for total in (60, None):
        entry["supersedes"]["training"]["epochs_total"] = total
        assert "(90.00% top-1, 60 epochs of `campaign`)" in model_cards.render_card(entry)


def _warm_started_entries():
    """The shipped checkpoints that were warm-started, and one built here
    (three runs, as Hamiltonian-74 shipped until 2026-12-06), so that the
    test runs whether or not a shipped checkpoint was warm-started."""
    found = {n: MANIFEST["checkpoints"][n] for n in NAMES
             if (MANIFEST["checkpoints"][n]["training"].get("history") or {}).get("warm_start")}
    built = copy.deepcopy(MANIFEST["checkpoints"][NAMES[0]])
    built["training"]["epochs"] = 100
    first = {"file": "hamiltonian-74-cifar10-cpu14ep.weights.h5", "top1": 0.8118,
             "sha256": "b3bc07cf8829825bd6836ecd3b25295c87f37261aa240d3000f986e1d0773358",
             "training": {"epochs": 14, "recipe": "cpu", "precision": "mixed_bfloat16",
                          "train_seconds": 5962.4}}
    second = {"file": "hamiltonian-74-cifar10-campaign60ep.weights.h5", "top1": 0.8717,
              "sha256": "e8ffe24c4370fe88d3abd60789477b4bdf4bec5d8435328559aba341538e5046",
              "training": {"epochs": 60, "recipe": "campaign", "precision": "mixed_bfloat16",
                           "train_seconds": 15454.0},
              "epochs_total": 74, "warm_start": first}
    built["training"]["history"] = {"epochs_total": 174, "segments": [], "train_hours": 1.0,
                                    "warm_start": second}
    found["built-from-three-runs"] = built
    return found


WARM_STARTED = _warm_started_entries()


@pytest.mark.parametrize("name", sorted(WARM_STARTED))
def test_a_warm_started_card_lists_every_run_behind_its_weights(name):
    entry = WARM_STARTED[name]
    history = entry["training"]["history"]
    chain = model_cards.lineage(history["warm_start"])
    # Back to a run that started from nothing: the epochs add up to the total.
    assert sum(c["training"]["epochs"] for c in chain) + entry["training"]["epochs"] == (
        history["epochs_total"])
    card = model_cards.render_card(entry)
    assert f"- **Training behind these weights** ({history['epochs_total']} epochs" in card
    listed = card[card.index("- **Training behind these weights**"):].splitlines()[1:len(chain) + 2]
    assert [line.split("`")[1] for line in listed[:-1]] == [c["file"] for c in chain]
    assert listed[-1].startswith(f"  - these weights: {entry['training']['epochs']} epochs")


def test_a_card_describes_the_architecture_within_its_family():
    # The three PDE-CNNs share a family but not their dynamics or reversibility.
    parabolic = model_cards.overview(
        {"architecture": "parabolic", "family": "pde", "dataset": {"name": "cifar10"}})
    second_order = model_cards.overview(
        {"architecture": "second-order", "family": "pde", "dataset": {"name": "cifar10"}})
    assert "parabolic" in parabolic and "not reversible" in parabolic
    assert "leapfrog" in second_order and "not reversible" not in second_order
    assert f"{pde.STEPS} steps per unit" in second_order
    assert "Chang et al. 2018, Eq. 10" in model_cards.overview(
        {"architecture": "hamiltonian-74", "family": "hamiltonian",
         "dataset": {"name": "cifar10"}})


def test_the_memory_of_an_entry_is_the_median_over_fresh_builds(monkeypatch):
    peaks = iter([3, 1, 2, 30, 10, 20])
    built = []
    monkeypatch.setattr(analysis, "train_step_peak_bytes",
                        lambda model, batch: built.append(model) or next(peaks) * 2**20)
    assert entries.training_memory("revnet-38", {"classes": 10}, batch=2, repeats=3) == {
        "reversible": 2.0, "autodiff": 20.0}
    assert len({id(model) for model in built}) == 6


def test_a_parabolic_card_reports_only_the_autodiff_memory(monkeypatch):
    # The registry marks the parabolic CNN not invertible, so its memory
    # record and its card's trade-off have no reversible engine to compare.
    assert not zoo.registry.get_entry("parabolic").invertible
    assert zoo.registry.get_entry("second-order").invertible
    measured = []
    monkeypatch.setattr(analysis, "train_step_peak_bytes",
                        lambda model, batch: measured.append(model.name) or 2**20)
    assert entries.training_memory("parabolic", {"classes": 10}, batch=2,
                                   repeats=1) == {"autodiff": 1.0}
    assert len(measured) == 1  # one model built: no reversible engine measured
    text = model_cards.tradeoff({"memory": {"batch": 2, "train_step_peak_mib": {
        "autodiff": 1.0}}})
    assert text.startswith("not reversible")


def test_load_rebuilds_the_trained_network_from_all_its_builder_args(tmp_path, monkeypatch):
    # A checkpoint of a non-default network (fewer control points, narrower
    # units, another step size): every zoo.load path must rebuild that network.
    args = {"classes": 10, "input_shape": [32, 32, 3], "control_points": 2,
            "widths": [8, 16, 16, 16], "h": 0.5}
    keras.utils.set_random_seed(1)
    trained = zoo.build("parabolic", **{**args, "input_shape": (32, 32, 3)})
    weights = tmp_path / "tiny.weights.h5"
    trained.save_weights(str(weights))
    manifest = pretrained.read_manifest()
    entry = manifest["checkpoints"][FIRST]
    entry.update(architecture="parabolic", builder_args=args)
    entry["weights"].update(file=weights.name, sha256=pretrained.sha256(str(weights)),
                            bytes=weights.stat().st_size)
    pretrained.write_manifest(manifest, str(tmp_path / "manifest.json"))
    monkeypatch.setenv(pretrained.ENV_MANIFEST, str(tmp_path / "manifest.json"))

    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    full = zoo.load(FIRST, weights_dir=str(tmp_path))
    np.testing.assert_allclose(full.predict(images, verbose=0),
                               trained.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    features = zoo.load(FIRST, include_top=False, weights_dir=str(tmp_path))
    inner = keras.Model(trained.input, trained.get_layer("predictions").input)
    np.testing.assert_allclose(
        features.predict(images, verbose=0).mean(axis=(1, 2)),
        inner.predict(images, verbose=0), rtol=1e-4, atol=1e-5)
    five = zoo.load(FIRST, classes=5, weights_dir=str(tmp_path))
    # Only the classifier (16 features → classes) differs.
    assert five.count_params() - (16 * 5 + 5) == trained.count_params() - (16 * 10 + 10)
    assert five.get_layer("unit1").count_params() == trained.get_layer("unit1").count_params()
    assert five.output_shape == (None, 5)


def test_make_entry_refuses_a_mismatched_run(tmp_path):
    record = json.load(open(os.path.join(
        REPO_ROOT, zoo.info(FIRST)["training"]["record"], "results.json")))
    with pytest.raises(ValueError, match="run record"):
        entries.make_entry("resnet-110-cifar10", pretrained.weights_path(FIRST), record,
                              {"split": "test"}, samples_dir=SAMPLES)
    with pytest.raises(ValueError, match="dataset suffix"):
        entries.make_entry(zoo.info(FIRST)["architecture"], pretrained.weights_path(FIRST),
                              record, {"split": "test"}, samples_dir=SAMPLES)


def test_a_pip_install_finds_the_manifest_under_its_prefix(tmp_path, monkeypatch):
    # setup.cfg installs checkpoints/ into <prefix>/share/zoo/checkpoints.
    installed = tmp_path / "prefix" / "share" / "zoo" / "checkpoints"
    installed.mkdir(parents=True)
    shutil.copyfile(pretrained.manifest_path(), installed / "manifest.json")
    shutil.copyfile(pretrained.weights_path(FIRST), installed / zoo.info(FIRST)["weights"]["file"])
    monkeypatch.delenv(pretrained.ENV_MANIFEST, raising=False)
    monkeypatch.delenv(pretrained.ENV_WEIGHTS_DIR, raising=False)
    monkeypatch.setattr(manifest, "_package_root", lambda: str(tmp_path / "site-packages"))
    monkeypatch.setattr(manifest.sys, "prefix", str(tmp_path / "prefix"))
    assert pretrained.manifest_path() == str(installed / "manifest.json")
    assert pretrained.weights_path(FIRST, cache_dir=str(tmp_path / "cache")).startswith(
        str(installed))


def test_the_readme_main_command_classifies_the_samples():
    import subprocess
    import sys

    name = "hamiltonian-74-cifar10"
    proc = subprocess.run([sys.executable, "tools/predict.py", "--model", name, "--top", "1",
                           "tools/samples"], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    recorded = zoo.info(name)["checks"]["sample_predictions"]
    lines = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())
    assert sorted(lines) == sorted(recorded)
    for file, best in recorded.items():
        assert lines[file].split()[0] == best["label"], (file, lines[file])
    assert "random" not in proc.stderr


def test_predict_classifies_every_readable_image_and_names_each_unreadable_one(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    samples = os.path.join(REPO_ROOT, "tools", "samples")
    for name in sorted(os.listdir(samples))[:3]:
        shutil.copy(os.path.join(samples, name), tmp_path / name)
    good = open(os.path.join(samples, sorted(os.listdir(samples))[0]), "rb").read()
    (tmp_path / "corrupt.png").write_bytes(good[:300])
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    proc = subprocess.run([sys.executable, "tools/predict.py", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 1
    assert len([line for line in proc.stdout.splitlines() if line.startswith("cifar10_")]) == 3
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR ")]
    assert [line.split(":")[0] for line in errors] == [
        f"ERROR {tmp_path / name}" for name in ("corrupt.png", "empty.png", "text.png")]
    assert "Invalid PNG data" in errors[0] and "3 of 6 images could not be read" in proc.stderr


def test_a_checkpoint_loads_by_its_name_tag_form():
    name = FIRST
    architecture, dataset = zoo.registry.split_name(name)
    tagged = f"{architecture.name}.{dataset}"
    assert zoo.info(tagged) == zoo.info(name)
    assert pretrained.weights_path(tagged) == pretrained.weights_path(name)
    with pytest.raises(ValueError, match="No pretrained weights"):
        zoo.info(f"{architecture.name}.{dataset}_another")


def test_every_plain_name_meets_the_publishing_bar_and_the_others_are_previews():
    assert pretrained.PUBLISHING_BAR == 1.5
    for name, entry in MANIFEST["checkpoints"].items():
        gap = entry["paper"]["top1"] - 100 * entry["metrics"]["top1"]
        if pretrained.is_preview(name):
            assert gap > 1.5 and name == pretrained.preview_name(name), name
            assert not pretrained.has_checkpoint(pretrained.plain_name(name)), name
        else:
            assert gap <= 1.5 and name == pretrained.plain_name(name), name
        assert pretrained.release_key(entry) == entry["name"] == name
    # No plain name hides a preview-only network from the default listing.
    plain = zoo.list_models(pretrained=True, previews=False)
    assert plain == [n for n in NAMES if not pretrained.is_preview(n)]
    assert "hamiltonian-74-cifar10" in plain


def test_the_bar_is_measured_against_the_paper_and_needs_a_paper_figure():
    entry = {"name": "leapfrog-26-cifar10", "paper": {"top1": 91.92}, "metrics": {"top1": 0.9042}}
    assert pretrained.gap_to_paper(entry) == 1.5 and pretrained.meets_bar(entry)
    assert pretrained.release_key(entry) == "leapfrog-26-cifar10"
    entry["metrics"]["top1"] = 0.9041
    assert not pretrained.meets_bar(entry)
    assert pretrained.release_key(entry) == "leapfrog-26.cifar10_preview"
    assert not pretrained.meets_bar({**entry, "paper": None, "metrics": {"top1": 0.99}})
    assert pretrained.plain_name("leapfrog-26.cifar10_preview") == "leapfrog-26-cifar10"
    assert pretrained.preview_name("hamiltonian-74.cifar10_long") == (
        "hamiltonian-74.cifar10_long_preview")


def test_the_plain_name_of_a_preview_fails_in_one_line_naming_the_tag(tmp_path, monkeypatch):
    # A manifest in which the first checkpoint fell below the bar.
    entry = copy.deepcopy(MANIFEST["checkpoints"][FIRST])
    entry["metrics"]["top1"] = 0.5
    preview = pretrained.preview_name(FIRST)
    entry["name"] = preview
    path = tmp_path / "manifest.json"
    pretrained.write_manifest({**MANIFEST, "checkpoints": {preview: entry}}, str(path))
    monkeypatch.setenv(pretrained.ENV_MANIFEST, str(path))
    monkeypatch.setenv(pretrained.ENV_WEIGHTS_DIR, os.path.join(REPO_ROOT, "checkpoints"))
    assert zoo.list_models(pretrained=True) == [preview]
    assert zoo.list_models(pretrained=True, previews=False) == []
    architecture, dataset = zoo.registry.split_name(FIRST)
    for asked in (FIRST, f"{architecture.name}.{dataset}"):
        with pytest.raises(ValueError) as error:
            zoo.load(asked)
        message = str(error.value)
        assert "\n" not in message and f"load it as '{preview}'" in message
        assert "50.00% top-1" in message and f"{entry['paper']['top1']:.2f}%" in message
    # The preview itself loads by its tag, and the command line says the same.
    assert zoo.load(preview).count_params() == entry["parameters"]["total"]
    proc = subprocess.run([sys.executable, "-m", "zoo", "evaluate", "--model", FIRST],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and f"load it as '{preview}'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
