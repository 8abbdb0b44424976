"""The manifest entry of a trained checkpoint, every number measured when it
is registered: accuracy checks, sample predictions, training memory."""

import os

import numpy as np

from zoo import registry
from zoo.pretrained.loader import _builder_kwargs
from zoo.pretrained.manifest import sha256


SUBSET_SIZE = 1000


MEMORY_BATCH = 128
# The allocator peak of one step moves by some ±5% from one build of the same
# network to the next (Hamiltonian-74, reversible: 114.0 to 132.0 MiB in one
# process), so the entry gives the median of a few builds.
MEMORY_REPEATS = 5


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


def training_memory(architecture, builder_args, batch=MEMORY_BATCH, repeats=MEMORY_REPEATS):
    """Training-step peak allocator MiB (float32) for each engine the
    architecture has: {"reversible": ..., "autodiff": ...} (no reversible
    engine where its blocks are not invertible), the median over `repeats`
    fresh builds."""
    import keras

    from zoo.research import analysis

    invertible = registry.get_entry(architecture).invertible
    engines = {"reversible": True, "autodiff": False} if invertible else {"autodiff": False}
    result = {}
    for engine, reversible in engines.items():
        peaks = []
        for _ in range(repeats):
            keras.utils.set_random_seed(0)
            model = registry.build(architecture, **_builder_kwargs(builder_args),
                                   reversible=reversible)
            peaks.append(analysis.train_step_peak_bytes(model, batch))
            keras.backend.clear_session()
        result[engine] = round(float(np.median(peaks)) / 2**20, 1)
    return result


def kernel_drift_range(model):
    """min / mean / max over a model's stacked units of ||K_{j+1} − K_j|| / ||K_j||
    between neighbouring blocks (zoo.research.analysis.kernel_drift), rounded;
    None for a model without stacked units."""
    import numpy as np

    from zoo.research import analysis

    drift = list(analysis.kernel_drift(model).values())
    if not drift:
        return None
    ratios = np.concatenate(drift)
    return {"min": round(float(ratios.min()), 3), "mean": round(float(ratios.mean()), 3),
            "max": round(float(ratios.max()), 3)}


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

    from zoo import data, training

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
                    for key, value in {**data.DATASETS[dataset].builder_args,
                                       **training.architecture_args(config)}.items()}
    label_names = list(data.DATASETS[dataset].labels)

    model = registry.build(entry_info.name, **_builder_kwargs(builder_args),
                           weights=weights_file, dtype="float32")
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    recipe = dict(training.RECIPES[config["recipe"]].__dict__)
    recipe["decay_epochs"] = list(recipe["decay_epochs"])
    overridden = {key: config[key] for key in ("batch_size", "epochs", "steps", "learning_rate",
                                               "weight_decay", "smoothness_decay",
                                               "mixed_precision", "reversible",
                                               "label_smoothing", "ema_decay")
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
        "kernel_drift": kernel_drift_range(model),
        "memory": {
            "what": "TF CPU allocator peak of one float32 SGD training step above the memory "
                    "in use before it (zoo.analysis.train_step_peak_bytes), median over "
                    f"{MEMORY_REPEATS} builds of the network",
            "batch": MEMORY_BATCH,
            "train_step_peak_mib": training_memory(entry_info.name, builder_args),
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
        "paper": entry_info.paper_result(dataset),
        "license": license,
        "citations": entry_info.citations(dataset),
        "notes": notes,
    }
    keras.backend.clear_session()
    return entry
