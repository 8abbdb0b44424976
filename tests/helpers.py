"""Shared test utilities and the model tests every architecture and
checkpoint share."""

import numpy as np


def max_relative_error(a, b):
    """max |a − b| / max |a|, the error measure of the gradient tests."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a)), 1e-30)
    return float(np.max(np.abs(a - b)) / scale)


def randomize(variables, scale=0.1, seed=0):
    """Adds noise to trainable variables so that zero biases do not hide bugs."""
    rng = np.random.default_rng(seed)
    for v in variables:
        if v.trainable:
            v.assign(v.numpy() + scale * rng.standard_normal(v.shape).astype(v.dtype))


def copy_weights(source, target):
    for s, t in zip(source.weights, target.weights):
        assert s.shape == t.shape, (s.path, t.path)
        t.assign(s)


# --------------------------------------------------------------------------
# Shared model tests (in the manner of keras-hub's TestCase.run_*_test): every
# architecture and every shipped checkpoint goes through the same checks,
# chosen from the registry and the manifest rather than from name lists.
# --------------------------------------------------------------------------
def smallest_of_each_family():
    """The registered architecture with the fewest parameters of each family:
    the ones the heavier per-model tests run on."""
    import zoo

    smallest = {}
    for name in zoo.list_models():
        entry = zoo.registry.get_entry(name)
        best = smallest.get(entry.family)
        if best is None or entry.parameters[0] < zoo.registry.get_entry(best).parameters[0]:
            smallest[entry.family] = name
    return sorted(smallest.values())


def run_model_saving_test(name, directory, **build_kwargs):
    """A `.keras` file of `zoo.build(name, **build_kwargs)` (random weights)
    loads in safe mode into a model with the same outputs and regularisers."""
    import os

    import keras

    import zoo

    model = zoo.build(name, **build_kwargs)
    randomize(model.weights, scale=0.05)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    path = os.path.join(os.fspath(directory), f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode=True
    assert loaded.count_params() == model.count_params()
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert len(loaded.losses) == len(model.losses) > 0
    np.testing.assert_allclose(sum(loaded.losses), sum(model.losses), rtol=1e-6)


def run_reversible_equivalence_test(name):
    """The reversible engine computes the same function as plain autodiff."""
    import zoo

    rev = zoo.build(name, reversible=True)
    plain = zoo.build(name, reversible=False)
    randomize(rev.weights, scale=0.05)
    copy_weights(rev, plain)
    x = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(rev(x, training=True), plain(x, training=True), atol=1e-6)


def run_preset_test(name, samples_dir):
    """A shipped checkpoint: its file matches the manifest's hash, and
    `zoo.load` gives the predictions recorded for the sample images."""
    import os

    import pytest

    import zoo
    from zoo import inference, pretrained

    entry = zoo.info(name)
    path = pretrained.weights_path(name)
    assert pretrained.sha256(path) == entry["weights"]["sha256"]
    model = zoo.load(name)
    recorded = entry["checks"]["sample_predictions"]
    images = inference.load_images(
        [os.path.join(samples_dir, f) for f in sorted(recorded)], model.input_shape[1:3])
    probabilities = model.predict(images, verbose=0)
    for row, file in zip(probabilities, sorted(recorded)):
        assert int(row.argmax()) == recorded[file]["class"], file
        assert row.max() == pytest.approx(recorded[file]["probability"], abs=1e-3), file


def training_run_directory(tmp_path, model, trained_as, model_args):
    """A training output directory as `zoo train` leaves it: the weights and
    the run's config.json beside them."""
    import dataclasses
    import json

    from zoo import training

    run = tmp_path / "run"
    run.mkdir()
    weights = str(run / "last.weights.h5")
    model.save_weights(weights)
    config = training.TrainConfig(model=trained_as, output_dir=str(run), dataset="cifar10",
                                  model_args=model_args)
    with open(run / "config.json", "w") as f:
        json.dump(dataclasses.asdict(config), f)
    return weights
