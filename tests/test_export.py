"""SavedModel export for TF Serving and TF Hub. The model server itself cannot
run here; these tests use what TF Serving would read: the signatures, the
request protos of tensorflow-serving-api, the warm-up file and models.config."""

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
from zoo import inference
from zoo import export

NAME = "hamiltonian-74-cifar10"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tool's export of the pretrained Hamiltonian-74, with models.config."""
    export_dir = tmp_path_factory.mktemp("exports")
    proc = subprocess.run(
        [sys.executable, "tools/export.py", "--model", NAME, "--export_dir", str(export_dir),
         "--version", "3", "--models_config"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return export_dir


@pytest.fixture(scope="module")
def sample_images():
    paths = inference.image_paths([os.path.join(REPO_ROOT, "tools", "samples")])
    return inference.load_images(paths, (32, 32))


def test_layout_is_what_tf_serving_watches(exported):
    version = exported / NAME / "3"
    assert (version / "saved_model.pb").exists() and (version / "variables").is_dir()
    extra = version / "assets.extra"
    assert {"model_card.json", "model_card.md", export.WARMUP_FILE} <= set(os.listdir(extra))
    # Nothing half-written is left next to the version.
    assert os.listdir(exported / NAME) == ["3"]
    card = json.loads((extra / "model_card.json").read_text())
    assert {"model_details", "model_parameters", "quantitative_analysis",
            "considerations"} <= set(card)
    assert card["model_details"]["version"]["diff"] == zoo.info(NAME)["weights"]["sha256"]


def test_saved_model_cli_lists_the_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    proc = subprocess.run([cli, "show", "--all", "--dir", str(exported / NAME / "3")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for signature, dtype in (("serving_default", "DT_UINT8"), ("serving_float", "DT_FLOAT")):
        block = text.split(f"signature_def['{signature}']:")[1].split("signature_def[")[0]
        inputs, outputs = block.split("output(s):")
        assert "inputs['images']" in inputs and dtype in inputs and "(-1, 32, 32, 3)" in inputs
        for name, out_dtype, shape in (("probabilities", "DT_FLOAT", "(-1, 10)"),
                                       ("classes", "DT_INT32", "(-1, 5)"),
                                       ("scores", "DT_FLOAT", "(-1, 5)"),
                                       ("labels", "DT_STRING", "(-1, 5)")):
            part = outputs.split(f"outputs['{name}']")[1].split("name:")[0]
            assert out_dtype in part and shape in part, (signature, name, part)
        assert "tensorflow/serving/predict" in block


def test_reloaded_outputs_equal_the_keras_model(exported, sample_images):
    model = zoo.load(NAME)
    expected = model.predict(sample_images, verbose=0)
    loaded = tf.saved_model.load(str(exported / NAME / "3"))
    out = loaded.signatures["serving_default"](images=tf.constant(sample_images))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    out_float = loaded.signatures["serving_float"](images=tf.constant(sample_images, tf.float32))
    np.testing.assert_allclose(out_float["probabilities"].numpy(), expected, atol=1e-5)
    best = expected.argmax(axis=1)
    np.testing.assert_array_equal(out["classes"].numpy()[:, 0], best)
    labels = [zoo.info(NAME)["labels"][i] for i in best]
    assert [b.decode() for b in out["labels"].numpy()[:, 0]] == labels
    assert np.all(np.diff(out["scores"].numpy(), axis=1) <= 0)


def test_a_predict_request_gives_the_same_outputs(exported, sample_images):
    from tensorflow_serving.apis import model_pb2, predict_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=NAME, signature_name="serving_default"))
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(sample_images))
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # the wire
    loaded = tf.saved_model.load(str(exported / NAME / "3"))
    signature = loaded.signatures[request.model_spec.signature_name]
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    out = signature(**inputs)
    direct = signature(images=tf.constant(sample_images))
    for key in ("probabilities", "classes", "labels"):
        np.testing.assert_array_equal(out[key].numpy(), direct[key].numpy())


def test_the_warmup_file_parses_and_runs(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    path = exported / NAME / "3" / "assets.extra" / export.WARMUP_FILE
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(str(path))]
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == {
        "serving_default", "serving_float"}
    loaded = tf.saved_model.load(str(exported / NAME / "3"))
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == NAME
        images = tf.make_ndarray(request.inputs["images"])
        assert images.shape[1:] == (32, 32, 3)
        out = loaded.signatures[request.model_spec.signature_name](images=tf.constant(images))
        assert out["probabilities"].shape == (images.shape[0], 10)


def test_wrong_dtype_or_shape_is_rejected(exported):
    loaded = tf.saved_model.load(str(exported / NAME / "3"))
    signature = loaded.signatures["serving_default"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        signature(images=tf.zeros((1, 32, 32, 3), tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[batch, 32, 32, 3\]"):
        signature(images=tf.zeros((1, 64, 64, 3), tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[batch, 32, 32, 3\]"):
        signature(images=tf.zeros((1, 32, 32, 1), tf.uint8))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        signature(images=tf.zeros((1, 32, 32), tf.uint8))


def test_models_config_lists_the_exports(exported):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse((exported / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    [entry] = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (
        NAME, f"/models/{NAME}", "tensorflow")


def test_tf_hub_loads_it_and_fine_tunes_it(exported, sample_images):
    import tensorflow_hub as hub
    import tf_keras

    path = str(exported / NAME / "3")
    module = hub.load(path)
    images01 = tf.constant(sample_images, tf.float32) / 255.0
    features = module(images01, training=False)
    model = zoo.load(NAME)
    inner = keras.Model(model.input, model.get_layer("avg_pool").output)
    np.testing.assert_allclose(features.numpy(), inner.predict(sample_images, verbose=0),
                               atol=1e-5)

    layer = hub.KerasLayer(path, trainable=True)
    classifier = tf_keras.Sequential([tf_keras.Input((32, 32, 3)), layer,
                                      tf_keras.layers.Dense(3)])
    classifier.compile(tf_keras.optimizers.SGD(0.01),
                       tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert len(layer.trainable_weights) == len(module.trainable_variables) > 0
    before = [w.numpy().copy() for w in layer.trainable_weights]
    classifier.fit(images01, np.arange(len(sample_images)) % 3, epochs=1, batch_size=10,
                   verbose=0)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, layer.trainable_weights))


def test_a_reversible_model_exports_and_matches(tmp_path):
    # A fresh model with the reversible engine's custom gradient inside.
    model = zoo.build("midpoint-26-cifar10", reversible=True)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
    path = export.export_saved_model(model, str(tmp_path), "small", 1,
                                     [f"c{i}" for i in range(10)], top_k=3)
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), model.predict(images, verbose=0),
                               atol=1e-5)
    assert out["classes"].shape == (3, 3)
    assert export.exported_models(str(tmp_path)) == {"small": [1]}


def _tiny_classifier():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def test_versions_are_never_overwritten_silently_and_writes_are_atomic(tmp_path, monkeypatch):
    model = _tiny_classifier()
    labels = [str(i) for i in range(10)]
    path = export.export_saved_model(model, str(tmp_path), "m", 1, labels)
    pb = open(os.path.join(path, "saved_model.pb"), "rb").read()
    with pytest.raises(FileExistsError, match="exists"):
        export.export_saved_model(model, str(tmp_path), "m", 1, labels)
    assert open(os.path.join(path, "saved_model.pb"), "rb").read() == pb

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_saved_model(model, str(tmp_path), "m", 2, labels)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_saved_model(model, str(tmp_path), "m", 1, labels, overwrite=True)
    # Neither a version 2 nor a staging directory appeared; version 1 is intact.
    assert sorted(os.listdir(tmp_path / "m")) == ["1"]
    assert open(os.path.join(path, "saved_model.pb"), "rb").read() == pb
    monkeypatch.undo()
    export.export_saved_model(model, str(tmp_path), "m", 1, labels, overwrite=True)
    assert sorted(os.listdir(tmp_path / "m")) == ["1"]
    with pytest.raises(ValueError, match="positive integer"):
        export.export_saved_model(model, str(tmp_path), "m", 0, labels)
    with pytest.raises(ValueError, match="label names"):
        export.export_saved_model(model, str(tmp_path), "m", 5, labels[:3])


def _predictions(stdout):
    """{file: [(label, probability), ...]} from predict's output."""
    found = {}
    for line in stdout.strip().splitlines():
        name, shown = line.split(": ", 1)
        found[name] = [(item.rsplit(" ", 1)[0], float(item.rsplit(" ", 1)[1]))
                       for item in shown.split(", ")]
    return found


def test_predict_with_the_export_resizes_and_matches_the_keras_model(exported, tmp_path):
    version = exported / NAME / "3"
    with open(version / "assets.extra" / "labels.txt") as f:
        assert f.read().splitlines() == zoo.info(NAME)["labels"]
    samples = os.path.join(REPO_ROOT, "tools", "samples")
    for name in sorted(os.listdir(samples))[:4]:
        image = tf.io.decode_png(open(os.path.join(samples, name), "rb").read())
        (tmp_path / name).write_bytes(open(os.path.join(samples, name), "rb").read())
        # A 64×64 copy: the signature rejects that size; predict resizes it first.
        large = tf.cast(tf.image.resize(image, (64, 64), method="nearest"), tf.uint8)
        (tmp_path / f"large_{name}").write_bytes(tf.io.encode_png(large).numpy())
    tool = [sys.executable, "tools/predict.py", "--top", "2"]
    by_export = subprocess.run([*tool, "--saved_model", str(version), str(tmp_path)],
                               capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    by_keras = subprocess.run([*tool, "--model", NAME, str(tmp_path)], capture_output=True,
                              text=True, cwd=REPO_ROOT, timeout=300)
    assert by_export.returncode == by_keras.returncode == 0, by_export.stderr[-2000:]
    export_rows, keras_rows = _predictions(by_export.stdout), _predictions(by_keras.stdout)
    assert sorted(export_rows) == sorted(keras_rows) and len(export_rows) == 8
    for name, row in export_rows.items():
        assert [label for label, _ in row] == [label for label, _ in keras_rows[name]], name
        np.testing.assert_allclose([p for _, p in row], [p for _, p in keras_rows[name]],
                                   atol=2e-3)
    proc = subprocess.run([*tool, "--saved_model", str(tmp_path), str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"predict.py: error: No SavedModel at '{tmp_path}' (a version directory, e.g. "
        "exports/hamiltonian-74-cifar10/1)."]
