"""Export a classifier as a SavedModel for TF Serving and TF Hub.

Layout (what TF Serving watches): `<export_dir>/<name>/<version>/` with
`saved_model.pb`, `variables/`, and `assets.extra/` holding the model card
(`model_card.json` in model-card-toolkit fields, `model_card.md`), the class
names in output order (`labels.txt`, one per line) and the warm-up requests TF
Serving replays at load (`tf_serving_warmup_requests`, a TFRecord of
`PredictionLog` protos).

Signatures (preprocessing is inside the graph, as in the Keras model):
  * `serving_default`: `images` uint8 [None, H, W, 3] at the model's own size;
  * `serving_float`: `images` float32 [None, H, W, 3], values in [0, 255].
Both return `probabilities` float32 [None, classes], `classes` int32
[None, k] (top-k class indices, best first), `scores` float32 [None, k]
(their probabilities) and `labels` string [None, k] (their class names).
Images of another size or dtype are rejected by the signature (TF Serving
answers INVALID_ARGUMENT): resize on the client; the networks were trained at
one resolution.

TF Hub reuse (`hub.load`, `hub.KerasLayer`): the root object's `__call__`
follows TF Hub's image conventions, float32 images in [0, 1], and returns the
pooled feature vector (the input of the classifier), with `variables`,
`trainable_variables` and `regularization_losses`, so
`hub.KerasLayer(path, trainable=True)` fine-tunes it.

Writing is atomic: the SavedModel is written to a hidden sibling directory
(TF Serving ignores names that are not numbers) and renamed into place, so a
version directory appears complete or not at all. An existing version is
never replaced unless `overwrite=True`.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

WARMUP_FILE = "tf_serving_warmup_requests"
LABELS_FILE = "labels.txt"
FEATURE_LAYER = "avg_pool"


def _variables(layer_or_model, trainable=None):
    """The tf.Variables behind a Keras model's variables (what a SavedModel
    tracks; Keras 3 wraps each in a keras.Variable)."""
    if trainable is None:
        variables = layer_or_model.variables
    elif trainable:
        variables = layer_or_model.trainable_variables
    else:
        variables = layer_or_model.non_trainable_variables
    return [getattr(v, "value", v) for v in variables]


def _serving_module(model, label_names, top_k):
    """A trackable object with the serving functions and the Hub interface."""
    height, width, channels = model.input_shape[1:]
    classes = model.output_shape[-1]
    if channels != 3:
        raise ValueError(f"Only RGB models can be exported, got {channels} channels.")
    if len(label_names) != classes:
        raise ValueError(f"{len(label_names)} label names for a model with {classes} outputs.")
    k = min(top_k, classes)
    labels = tf.constant([str(name) for name in label_names])

    def checked(images):
        # In the graph, so that TF Serving rejects other sizes with this
        # message too (restored signatures do not check static shapes).
        # The model runs only after the check: a wrong channel count reaching
        # the first convolution aborts the process instead of raising.
        check = tf.debugging.assert_equal(
            tf.shape(images)[1:], tf.constant([height, width, 3]),
            message=f"images must have shape [batch, {height}, {width}, 3]; resize them to "
                    f"{height}x{width} RGB first")
        with tf.control_dependencies([check]):
            return tf.identity(images)

    def outputs(images):
        images = checked(images)
        probabilities = tf.cast(model(images, training=False), tf.float32)
        scores, indices = tf.math.top_k(probabilities, k=k)
        return {"probabilities": probabilities, "classes": indices, "scores": scores,
                "labels": tf.gather(labels, indices)}

    module = tf.__internal__.tracking.AutoTrackable()
    module.variables = _variables(model)
    module.serve_uint8 = tf.function(
        lambda images: outputs(tf.cast(images, tf.float32)),
        input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")])
    module.serve_float = tf.function(
        outputs, input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32,
                                                name="images")])

    if FEATURE_LAYER in [layer.name for layer in model.layers]:
        import keras

        features = keras.Model(model.input, model.get_layer(FEATURE_LAYER).output)

        @tf.function
        def call(images, training=False):
            return tf.cast(features(checked(images) * 255.0, training=training), tf.float32)

        spec = tf.TensorSpec([None, height, width, 3], tf.float32)
        call.get_concrete_function(spec, training=False)
        call.get_concrete_function(spec, training=True)
        module.__call__ = call
        module.trainable_variables = _variables(features, trainable=True)
        module.feature_variables = _variables(features)
        module.regularization_losses = []
    return module


def model_card_json(entry):
    """A checkpoint's manifest entry in model-card-toolkit's schema fields."""
    from zoo import model_cards

    metrics = entry["metrics"]
    slice_ = f"{entry['dataset']['name']} {metrics['split']} ({metrics['images']} images)"
    paper = entry.get("paper")
    return {
        "model_details": {
            "name": entry["name"],
            "overview": model_cards.overview(entry),
            "version": {"name": entry["weights"]["file"], "diff": entry["weights"]["sha256"]},
            "licenses": [{"identifier": entry["license"]}],
            "citations": [{"citation": c["text"]} for c in entry["citations"]],
            "references": [{"reference": entry["training"].get("record") or ""}],
        },
        "model_parameters": {
            "model_architecture": entry["architecture"],
            "data": [
                {"name": f"{entry['dataset']['name']} train",
                 "description": f"{entry['dataset']['train_images']} images"},
                {"name": f"{entry['dataset']['name']} {metrics['split']}",
                 "description": f"{metrics['images']} images"},
            ],
            "input_format": (f"{entry['input']['shape']} {entry['input']['dtype']} in "
                             f"{entry['input']['value_range']}; {entry['input']['preprocessing']}"),
            "output_format": f"{entry['output']['shape']} {entry['output']['activation']}",
        },
        "quantitative_analysis": {
            "performance_metrics": [
                {"type": "top-1 accuracy", "value": str(metrics["top1"]), "slice": slice_},
                {"type": "top-5 accuracy", "value": str(metrics["top5"]), "slice": slice_},
                {"type": "cross-entropy", "value": str(metrics["loss"]), "slice": slice_},
            ] + ([{"type": "top-1 accuracy reported in the paper", "value": str(paper["top1"] / 100),
                   "slice": paper["source"]}] if paper else []),
        },
        "considerations": {
            "users": [{"description": text} for text in model_cards.users(entry)],
            "use_cases": [{"description": text} for text in model_cards.use_cases(entry)],
            "limitations": [{"description": text} for text in model_cards.limitations(entry)],
            "tradeoffs": [{"description": text} for text in [model_cards.tradeoff(entry)] if text],
            "ethical_considerations": [{"name": model_cards.ETHICS, "mitigation_strategy":
                                        "Do not use for decisions about people."}],
        },
    }


def warmup_requests(model_name, height, width, batch=2):
    """PredictionLog protos TF Serving replays when it loads the model: one
    request per signature, on mid-grey images."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    logs = []
    for signature, dtype in (("serving_default", np.uint8), ("serving_float", np.float32)):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
        images = np.full((batch, height, width, 3), 128, dtype)
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def export_saved_model(model, export_dir, name, version, label_names, *, top_k=5,
                       model_card=None, overwrite=False):
    """Writes `model` to `<export_dir>/<name>/<version>/`; returns that path.

    Args:
      model: a zoo classifier (images in [0, 255] to probabilities).
      label_names: class names in output order.
      top_k: how many classes the signatures return.
      model_card: optional manifest entry (`zoo.info(name)`), written to
        assets.extra/ as model-card-toolkit JSON and Markdown.
      overwrite: replace an existing version instead of failing.
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be a positive integer (TF Serving's layout), got "
                         f"{version!r}.")
    base = os.path.join(export_dir, name)
    final = os.path.join(base, str(version))
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(f"{final} exists; choose another version, or replace it "
                              "(--overwrite, overwrite=True).")
    os.makedirs(base, exist_ok=True)
    module = _serving_module(model, label_names, top_k)
    staging = tempfile.mkdtemp(prefix=f".{version}-incomplete-", dir=base)
    try:
        tf.saved_model.save(module, staging, signatures={
            "serving_default": module.serve_uint8.get_concrete_function(),
            "serving_float": module.serve_float.get_concrete_function()})
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        height, width = model.input_shape[1:3]
        # The class names in output order, for clients (TF Serving ignores it).
        with open(os.path.join(extra, LABELS_FILE), "w") as f:
            f.write("".join(f"{label}\n" for label in label_names))
        with tf.io.TFRecordWriter(os.path.join(extra, WARMUP_FILE)) as writer:
            for log in warmup_requests(name, height, width):
                writer.write(log.SerializeToString())
        if model_card is not None:
            from zoo import model_cards

            with open(os.path.join(extra, "model_card.json"), "w") as f:
                json.dump(model_card_json(model_card), f, indent=2)
            with open(os.path.join(extra, "model_card.md"), "w") as f:
                f.write(model_cards.render_card(model_card))
        if os.path.exists(final):  # overwrite: move the old one aside first
            old = tempfile.mkdtemp(prefix=f".{version}-replaced-", dir=base)
            os.rename(final, os.path.join(old, "saved"))
            os.rename(staging, final)
            shutil.rmtree(old)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def export_pretrained(name, export_dir, version, *, top_k=5, overwrite=False, weights_dir=None):
    """Exports a pretrained zoo model with its model card.

    The exported graph is the plain-autodiff twin of the model
    (`reversible=False`): the same weights and the same forward pass, without
    the reversible engine's custom gradient, which serving never uses and
    which Hub fine-tuning does not need at these sizes.
    """
    from zoo import precision, pretrained

    with precision.policy("float32"):
        model = pretrained.load(name, weights_dir=weights_dir, reversible=False)
        entry = pretrained.info(name)
        return export_saved_model(model, export_dir, entry["name"], version, entry["labels"],
                                  top_k=top_k, model_card=entry, overwrite=overwrite)


def exported_models(export_dir):
    """{name: [versions]} of the complete SavedModels under export_dir."""
    found = {}
    if not os.path.isdir(export_dir):
        return found
    for name in sorted(os.listdir(export_dir)):
        base = os.path.join(export_dir, name)
        if not os.path.isdir(base):
            continue
        versions = sorted(int(v) for v in os.listdir(base)
                          if v.isdigit() and os.path.exists(os.path.join(base, v, "saved_model.pb")))
        if versions:
            found[name] = versions
    return found


def models_config(names, base_path="/models"):
    """A TF Serving models.config (model_config_list, text format) serving
    each named model from <base_path>/<name>."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in names:
        config.model_config_list.config.add(
            name=name, base_path=f"{base_path.rstrip('/')}/{name}", model_platform="tensorflow")
    return text_format.MessageToString(config)
