"""Pretrained checkpoints: the manifest, `load`, `info`.

The manifest (`checkpoints/manifest.json`) has one entry per checkpoint,
keyed by the model name users pass to `load` ("hamiltonian-74-cifar10"): the
architecture and builder arguments, dataset, input spec, labels, parameter
count, weights file with its sha256 and size, measured metrics, the training
recipe as it ran, license and citations. `tools/register_checkpoint.py` writes
entries (`make_entry`), `tools/model_cards.py` renders MODEL_CARDS.md from it.

Where weights are looked for, in order:
  1. `weights_dir=` or $ZOO_WEIGHTS_DIR, if given (and only there);
  2. the directory of the manifest: `checkpoints/` of a source checkout, or
     `<prefix>/share/zoo/checkpoints` where the package was pip-installed;
  3. the cache directory (`cache_dir=`, $ZOO_CACHE_DIR or ~/.cache/zoo),
     into which an entry with a `url` is downloaded on first use.
Every file is checked against the manifest's sha256 and size before a single
weight is read, so a corrupt or truncated file never gives a half-loaded
model. Weights files hold arrays only (Keras `.weights.h5`): nothing in them
is deserialised into code or configuration, which is what Keras' safe mode
guards against for `.keras` archives.
"""

import copy
import difflib
import functools
import hashlib
import json
import os
import sys

from zoo import registry

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
ENV_WEIGHTS_DIR = "ZOO_WEIGHTS_DIR"
ENV_CACHE_DIR = "ZOO_CACHE_DIR"
ENV_MANIFEST = "ZOO_MANIFEST"


class WeightsNotFoundError(FileNotFoundError):
    """A checkpoint's weights file is in none of the places looked at."""


class ChecksumError(ValueError):
    """A weights file does not match the manifest's sha256 or size."""


# --------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------
def _package_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def manifest_candidates():
    """Where the manifest is looked for, first match wins."""
    candidates = []
    if os.environ.get(ENV_MANIFEST):
        candidates.append(os.environ[ENV_MANIFEST])
    candidates.append(os.path.join(_package_root(), "checkpoints", MANIFEST_NAME))
    candidates.append(os.path.join(sys.prefix, "share", "zoo", "checkpoints", MANIFEST_NAME))
    return candidates


def manifest_path():
    for path in manifest_candidates():
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        "No checkpoint manifest found; looked at " + ", ".join(manifest_candidates())
        + f". Set ${ENV_MANIFEST} to the path of checkpoints/{MANIFEST_NAME}.")


def read_manifest(path=None):
    """The manifest as a dict {"format_version": ..., "checkpoints": {name: entry}}."""
    path = path or manifest_path()
    return copy.deepcopy(_read_manifest_cached(os.path.abspath(path), os.path.getmtime(path)))


@functools.lru_cache(maxsize=4)
def _read_manifest_cached(path, mtime):
    with open(path) as f:
        manifest = json.load(f)
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: manifest format_version {version!r}, this zoo reads "
                         f"{FORMAT_VERSION}.")
    return manifest


def write_manifest(manifest, path):
    """Writes the manifest with sorted keys, so that diffs stay readable."""
    manifest = {**manifest, "format_version": FORMAT_VERSION}
    manifest["checkpoints"] = dict(sorted(manifest.get("checkpoints", {}).items()))
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def list_pretrained(filter=""):
    """Sorted names of the models with shipped weights."""
    import fnmatch

    names = sorted(read_manifest()["checkpoints"])
    return [n for n in names if fnmatch.fnmatch(n, filter)] if filter else names


def info(name):
    """The manifest entry of a pretrained model, as a dict (a copy)."""
    checkpoints = read_manifest()["checkpoints"]
    key = name.strip().lower() if isinstance(name, str) else name
    if key in checkpoints:
        return checkpoints[key]
    raise ValueError(_unknown_message(name, sorted(checkpoints)))


def _unknown_message(name, pretrained):
    if not isinstance(name, str):
        return f"A model name must be a string, got {type(name).__name__}."
    try:
        registry.split_name(name)
        buildable = True
    except ValueError:
        buildable = False
    close = difflib.get_close_matches(name.strip().lower(), pretrained, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if buildable:
        return (f"No pretrained weights for {name!r}.{hint} Pretrained: {', '.join(pretrained)}. "
                f"zoo.build({name!r}) gives the untrained model.")
    return (f"Unknown model {name!r}.{hint} Pretrained models: {', '.join(pretrained)} "
            f"(zoo.list_models(pretrained=True)).")


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path, expected_sha256, expected_bytes=None):
    """Raises ChecksumError unless the file has the expected size and hash."""
    size = os.path.getsize(path)
    if expected_bytes is not None and size != expected_bytes:
        raise ChecksumError(
            f"{path} has {size} bytes, the manifest says {expected_bytes} "
            f"(sha256 {expected_sha256}): the file is truncated or not this checkpoint. "
            "Delete it and fetch it again.")
    actual = sha256(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"{path} has sha256 {actual}, the manifest expects {expected_sha256}: "
            "the file is corrupt or not this checkpoint. Delete it and fetch it again.")


def default_cache_dir():
    return os.environ.get(ENV_CACHE_DIR) or os.path.join(os.path.expanduser("~"), ".cache", "zoo")


def weights_path(name, weights_dir=None, cache_dir=None):
    """Path of a pretrained model's weights file, verified against the manifest."""
    entry = info(name)
    spec = entry["weights"]
    filename = spec["file"]
    weights_dir = weights_dir or os.environ.get(ENV_WEIGHTS_DIR)
    if weights_dir:
        places = [os.path.join(weights_dir, filename)]
    else:
        cache_dir = cache_dir or default_cache_dir()
        places = [os.path.join(os.path.dirname(manifest_path()), filename),
                  os.path.join(cache_dir, filename)]
    for path in places:
        if os.path.isfile(path):
            verify_file(path, spec["sha256"], spec.get("bytes"))
            return path
    if not weights_dir and spec.get("url"):
        return _download(spec, cache_dir)
    raise WeightsNotFoundError(
        f"Weights of {name!r} ({filename}, sha256 {spec['sha256']}) not found; looked at "
        + ", ".join(places)
        + (f". ${ENV_WEIGHTS_DIR} / weights_dir= points at a directory without it."
           if weights_dir else ". The file ships in checkpoints/ of the repository; "
           f"put it in one of these places or set ${ENV_WEIGHTS_DIR}."))


def _download(spec, cache_dir):
    import keras

    os.makedirs(cache_dir, exist_ok=True)
    try:
        path = keras.utils.get_file(fname=spec["file"], origin=spec["url"],
                                    cache_dir=cache_dir, cache_subdir=".")
    except Exception as error:  # urllib's errors vary by scheme
        raise WeightsNotFoundError(
            f"Could not download {spec['file']} from {spec['url']}: {error}") from error
    try:
        verify_file(path, spec["sha256"], spec.get("bytes"))
    except ChecksumError:
        os.remove(path)  # never leave a bad file where the next call would find it
        raise
    return path


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def load(name, include_top=True, classes=None, input_shape=None, pooling=None,
         classifier_activation="softmax", weights_dir=None, cache_dir=None, **kwargs):
    """A keras.Model with the pretrained weights of `name`.

    Args:
      name: a pretrained model name (`zoo.list_models(pretrained=True)`).
      include_top: False drops the classifier: the output is the final
        feature map (after the last BN + ReLU), or a vector with `pooling`.
      classes: a number of classes other than the checkpoint's gives a new,
        randomly initialised classifier on the pretrained body (fine-tuning).
      input_shape: another image size; the networks are fully convolutional
        up to the global pooling, so all weights still apply.
      pooling: None, "avg" or "max" (include_top=False only).
      classifier_activation: as in keras.applications; None gives logits.
      weights_dir: directory holding the weights file (else $ZOO_WEIGHTS_DIR,
        then checkpoints/, then the cache).
      cache_dir: where downloaded weights are kept (default ~/.cache/zoo).
      **kwargs: further builder arguments, e.g. reversible=False,
        weight_decay=5e-4 for fine-tuning.
    """
    entry = info(name)
    path = weights_path(name, weights_dir=weights_dir, cache_dir=cache_dir)
    args = _builder_kwargs(entry["builder_args"])
    for reserved in ("weights", "include_top"):
        if reserved in kwargs:
            raise TypeError(f"load() sets {reserved!r} itself; use zoo.build for other weights.")
    source = registry.build(entry["architecture"], **args, **kwargs,
                            classifier_activation=classifier_activation)
    try:
        source.load_weights(path)
    except Exception as error:
        raise ValueError(f"{path} passed its hash check but could not be loaded into "
                         f"{entry['architecture']}: {error}") from error
    same_head = classes in (None, args["classes"])
    same_input = input_shape is None or tuple(input_shape) == args["input_shape"]
    if include_top and same_head and same_input and pooling is None:
        return source
    if include_top and pooling is not None:
        raise ValueError("pooling applies only with include_top=False "
                         "(the classifier always averages).")
    target_args = {**args, "classes": args["classes"] if classes is None else classes,
                   "input_shape": args["input_shape"] if input_shape is None
                   else tuple(input_shape)}
    target = registry.build(
        entry["architecture"], include_top=include_top, pooling=pooling,
        classifier_activation=classifier_activation, **target_args, **kwargs)
    copy_matching_weights(source, target, skip=() if same_head else ("predictions",))
    return target


def _builder_kwargs(builder_args):
    """A manifest's builder_args as keyword arguments (JSON lists back to tuples)."""
    args = dict(builder_args)
    if "input_shape" in args:
        args["input_shape"] = tuple(args["input_shape"])
    return args


def copy_matching_weights(source, target, skip=()):
    """Copies the weights of every layer of `target` from the layer of the same
    name in `source`, except the layers named in `skip`."""
    for layer in target.layers:
        if not layer.weights or layer.name in skip:
            continue
        try:
            layer.set_weights(source.get_layer(layer.name).get_weights())
        except ValueError as error:
            raise ValueError(f"Layer {layer.name!r}: pretrained weights do not fit: "
                             f"{error}") from error


# --------------------------------------------------------------------------
# Making entries (tools/register_checkpoint.py)
# --------------------------------------------------------------------------
SUBSET_SIZE = 1000
MEMORY_BATCH = 128


def sample_predictions(model, samples_dir, label_names):
    """{file name: {"class", "label", "probability"}} of the top-1 prediction
    for each image in `samples_dir` (the fixed images the tests replay)."""
    from zoo import inference

    paths = inference.image_paths([samples_dir])
    images = inference.load_images(paths, model.input_shape[1:3])
    probabilities = model.predict(images, verbose=0)
    result = {}
    for path, row in zip(paths, probabilities):
        best = int(row.argmax())
        result[os.path.basename(path)] = {
            "class": best, "label": label_names[best], "probability": round(float(row[best]), 6)}
    return result


def subset_top1(model, dataset, data_dir=None, count=SUBSET_SIZE):
    """Top-1 accuracy on the first `count` test images: the check the tests
    repeat on every shipped checkpoint."""
    from zoo import data, evaluation

    split = data.load(dataset, "test", data_dir=data_dir)
    return evaluation.evaluate(model, split, limit=count)["top1"]


def training_memory(architecture, builder_args, batch=MEMORY_BATCH, invertible=True):
    """Training-step peak allocator MiB (float32) for each engine the
    architecture has: {"reversible": ..., "autodiff": ...}."""
    import keras

    from zoo import analysis

    engines = {"reversible": True, "autodiff": False} if invertible else {"autodiff": False}
    result = {}
    for engine, reversible in engines.items():
        keras.utils.set_random_seed(0)
        model = registry.build(architecture, **_builder_kwargs(builder_args), reversible=reversible)
        result[engine] = round(analysis.train_step_peak_bytes(model, batch) / 2**20, 1)
        keras.backend.clear_session()
    return result


def make_entry(name, weights_file, run_record, evaluation_report, *, samples_dir,
               data_dir=None, command=None, record_dir=None, code_commit=None,
               train_seconds=None, notes=None, url=None, license="Apache-2.0"):
    """The manifest entry of a trained checkpoint, every number measured here
    or read from the run's own record.

    Args:
      name: the model name users load, "<architecture>-<dataset>".
      weights_file: the weights file as it will ship (in checkpoints/).
      run_record: the dict of the run's results.json (zoo.training).
      evaluation_report: the dict of tools/evaluate.py's report (float32,
        full test split).
      samples_dir: images whose predictions are recorded for the tests.
      data_dir: where the dataset lives, for the subset check.
      command, record_dir, code_commit, train_seconds, notes, url: as recorded
        (code_commit and train_seconds override the run record's).
    """
    import keras

    from zoo import labels as zoo_labels
    from zoo import precision, references, training

    entry_info, dataset = registry.split_name(name)
    if dataset is None:
        raise ValueError(f"{name!r} has no dataset suffix; a checkpoint name needs one.")
    if run_record.get("model") != entry_info.name or run_record.get("dataset") != dataset:
        raise ValueError(f"The run record is of {run_record.get('model')}/"
                         f"{run_record.get('dataset')}, not {name}.")
    if evaluation_report.get("split") != "test":
        raise ValueError("The evaluation report must be of the test split.")
    config = run_record["config"]
    # Everything that shapes the network goes into builder_args, so that
    # zoo.load rebuilds what was trained (another h, fewer control points).
    builder_args = {key: (list(value) if isinstance(value, tuple) else value)
                    for key, value in {**registry.DATASETS[dataset],
                                       **training.architecture_args(config)}.items()}
    label_names = list(zoo_labels.BY_DATASET[dataset])

    with precision.policy("float32"):  # the caller's policy stays as it was
        model = registry.build(entry_info.name, **_builder_kwargs(builder_args),
                               weights=weights_file)
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    recipe = dict(training.RECIPES[config["recipe"]].__dict__)
    recipe["decay_epochs"] = list(recipe["decay_epochs"])
    overridden = {key: config[key] for key in ("batch_size", "epochs", "steps", "learning_rate",
                                               "weight_decay", "smoothness_decay",
                                               "mixed_precision", "reversible")
                  if config.get(key) is not None and recipe.get(key) != config[key]}

    flip = evaluation_report.get("flip_tta")
    entry = {
        "name": name,
        "architecture": entry_info.name,
        "family": entry_info.family,
        "builder_args": builder_args,
        "dataset": {
            "name": dataset,
            "train_split": "train",
            "train_images": run_record["train_examples"],
            "source": os.path.basename(evaluation_report.get("source") or dataset),
        },
        "input": {
            "shape": builder_args["input_shape"],
            "dtype": "uint8 or float32",
            "value_range": [0, 255],
            "preprocessing": "per-image standardisation inside the model (Chang et al. 2018); "
                             "give raw RGB pixels",
        },
        "output": {"shape": [builder_args["classes"]], "activation": "softmax"},
        "labels": label_names,
        "parameters": {
            "total": int(model.count_params()),
            "trainable": trainable,
            "paper": entry_info.paper_params,
        },
        "weights": {
            "file": os.path.basename(weights_file),
            "format": "Keras 3 weights-only HDF5 (.weights.h5)",
            "sha256": sha256(weights_file),
            "bytes": os.path.getsize(weights_file),
            "url": url,
        },
        "metrics": {
            "split": "test",
            "images": evaluation_report["num_examples"],
            "top1": evaluation_report["top1"],
            "top5": evaluation_report["top5"],
            "loss": round(evaluation_report["loss"], 4),
            "precision": "float32",
            "per_class_accuracy": evaluation_report["per_class_accuracy"],
        },
        **({"flip_tta": {"top1": flip["top1"], "top5": flip["top5"],
                         "what": "mean of the outputs on each image and its mirror image"}}
           if flip else {}),
        "checks": {
            "subset": {"split": "test", "first": SUBSET_SIZE,
                       "top1": subset_top1(model, dataset, data_dir)},
            "sample_predictions": sample_predictions(model, samples_dir, label_names),
        },
        "memory": {
            "what": "TF CPU allocator peak of one float32 SGD training step above the memory "
                    "in use before it (zoo.analysis.train_step_peak_bytes)",
            "batch": MEMORY_BATCH,
            "train_step_peak_mib": training_memory(entry_info.name, builder_args,
                                                   invertible=entry_info.invertible),
        },
        "training": {
            "recipe": config["recipe"],
            "recipe_settings": recipe,
            "overrides": overridden,
            "epochs": run_record["epochs"],
            "steps": run_record["steps"],
            "batch_size": config["batch_size"],
            "seed": config["seed"],
            "precision": training.dtype_policy(config["mixed_precision"]),
            "engine": "reversible" if run_record.get("reversible_engine") else "autodiff",
            "hardware": run_record["hardware"],
            "train_seconds": train_seconds,
            # A resumed run's record holds only its last part's wall time.
            "wall_seconds": (None if run_record.get("resumed_from")
                             else run_record.get("wall_seconds_this_session")),
            "code_commit": code_commit or run_record.get("code_commit"),
            "command": command,
            "record": record_dir,
        },
        "paper": references.paper_result(entry_info.name, dataset),
        "license": license,
        "citations": references.citations_for(entry_info.family, dataset),
        "notes": notes,
    }
    keras.backend.clear_session()
    return entry
