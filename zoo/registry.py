"""The registry of model names.

A model name is an architecture name ("hamiltonian-74") optionally followed by
a dataset suffix ("-cifar10", "-cifar100", "-stl10") that sets the number of
classes and the input size.
"""

import dataclasses
import difflib
import fnmatch
from typing import Callable, Optional

# What a dataset suffix sets on a builder.
DATASETS = {
    "cifar10": {"classes": 10, "input_shape": (32, 32, 3)},
    "cifar100": {"classes": 100, "input_shape": (32, 32, 3)},
    "stl10": {"classes": 10, "input_shape": (96, 96, 3)},
}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    family: str
    # Parameter count reported in the architecture's paper (Table 1 of Chang
    # et al. 2018, or of Ruthotto & Haber 2020 for the PDE-CNNs).
    paper_params: Optional[float] = None
    # Whether the blocks can run in the reversible engine (not ResNet).
    invertible: bool = True


_MODELS = {}


def register_model(name, family, paper_params=None, invertible=True):
    """Decorator registering a builder function under `name`."""

    def decorator(fn):
        if name in _MODELS:
            raise ValueError(f"Model {name!r} is registered twice.")
        _MODELS[name] = ModelEntry(name, fn, family, paper_params, invertible)
        return fn

    return decorator


def list_models(filter="", with_datasets=False, pretrained=False):
    """Sorted names of the buildable models.

    Args:
      filter: optional shell-style pattern, e.g. "hamiltonian-*".
      with_datasets: also list every name with each dataset suffix.
      pretrained: list only the models with shipped weights (`zoo.load`).
    """
    if pretrained:
        from zoo import pretrained as _pretrained

        return _pretrained.list_pretrained(filter)
    names = sorted(_MODELS)
    if with_datasets:
        names = names + sorted(f"{m}-{d}" for m in _MODELS for d in DATASETS)
    if filter:
        names = [n for n in names if fnmatch.fnmatch(n, filter)]
    return names


def split_name(name):
    """Splits a model name into (ModelEntry, dataset name or None)."""
    if not isinstance(name, str):
        raise TypeError(f"A model name must be a string, got {type(name).__name__}.")
    key = name.strip().lower()
    if key in _MODELS:
        return _MODELS[key], None
    for dataset in DATASETS:
        suffix = "-" + dataset
        if key.endswith(suffix) and key[: -len(suffix)] in _MODELS:
            return _MODELS[key[: -len(suffix)]], dataset
    close = difflib.get_close_matches(key, list_models(with_datasets=True), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown model {name!r}.{hint} zoo.list_models() lists the architectures; "
        f"each also takes a dataset suffix ({', '.join('-' + d for d in DATASETS)})."
    )


def get_entry(name):
    return split_name(name)[0]


def build(name, **kwargs):
    """Builds an untrained keras.Model by name.

    Keyword arguments go to the builder (keras.applications signature plus
    reversible, weight_decay, smoothness_decay, h); they override the
    dataset suffix's classes and input_shape.
    """
    entry, dataset = split_name(name)
    defaults = DATASETS[dataset] if dataset else {}
    return entry.builder(**{**defaults, **kwargs})
