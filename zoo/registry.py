"""The registry of model names.

A model name is an architecture name ("hamiltonian-74") optionally followed by
a dataset suffix ("-cifar10", "-cifar100", "-stl10"; zoo.data.datasets) that
sets the number of classes and the input size. As in timm, the dataset may
also be given as a tag after a dot, "hamiltonian-74.cifar10", and a tag may
name one of several checkpoints of an architecture on a dataset:
"hamiltonian-74.cifar10_<variant>" builds the same network as
"hamiltonian-74-cifar10" and names another pretrained checkpoint.

Everything the zoo knows about an architecture is given where its builder is
registered, in its own file under zoo/models/: its family (the card's phrase
and the papers to cite), the blocks it is made of (which decide whether the
reversible engine applies), its parameter count, and what its paper reports.
Model cards, manifest entries, `zoo info` and the tests read it from here.
"""

import dataclasses
import difflib
import fnmatch
import functools
from typing import Callable, Dict, Optional, Tuple

from zoo import precision, references
from zoo.data.datasets import DATASETS
from zoo.layers.base import InvertibleBlock


@dataclasses.dataclass(frozen=True)
class Family:
    """What the architectures of one family share.

    name: the family's name in manifests ("hamiltonian").
    description: the phrase a model card's overview uses for its members.
    citations: keys of zoo.references.CITATIONS: the architecture's paper,
      then the paper whose setting the zoo reproduces.
    """

    name: str
    description: str
    citations: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered architecture.

    parameters: (total, trainable) of `zoo.build(name)` (10 classes, 32×32),
      which the tests hold the builder to.
    paper_params: the parameter count its paper reports (Table 1 of Chang et
      al. 2018, or of Ruthotto & Haber 2020 for the PDE-CNNs).
    differs_from_paper: the count with this layout differs from
      `paper_params` beyond the paper's rounding (said in the builder's
      docstring).
    paper_top1: {dataset: (test top-1 %, key of zoo.references.PAPER_SOURCES)}.
    block: the class of the blocks of its units; the reversible engine
      applies where it is an InvertibleBlock.
    description: the card's phrase for this architecture where its family's
      is too broad (the PDE-CNNs), else None.
    """

    name: str
    builder: Callable
    family_facts: Family
    block: type
    parameters: Tuple[int, int]
    paper_params: Optional[float] = None
    differs_from_paper: bool = False
    paper_top1: Dict[str, Tuple[float, str]] = dataclasses.field(default_factory=dict)
    description: Optional[str] = None

    @property
    def family(self):
        return self.family_facts.name

    @property
    def invertible(self):
        """Whether its units can run in the reversible engine (not ResNet,
        not the parabolic CNN): decided by its blocks."""
        return issubclass(self.block, InvertibleBlock)

    def card_description(self):
        """The phrase of a model card's overview."""
        return self.description or self.family_facts.description

    def paper_result(self, dataset):
        """{"top1": %, "source": text} its paper reports on `dataset`, or None."""
        found = self.paper_top1.get(dataset)
        if found is None:
            return None
        top1, source = found
        return {"top1": top1, "source": references.PAPER_SOURCES[source]}

    def citations(self, dataset=None):
        """[{"key", "text"}] of the family's papers, then the dataset's."""
        known = DATASETS.get(dataset)
        keys = list(self.family_facts.citations) + list(known.citations if known else ())
        return [{"key": key, "text": references.CITATIONS[key]} for key in keys]


_MODELS = {}


def register_model(name, family, *, block, parameters, paper_params=None,
                   differs_from_paper=False, paper_top1=None, description=None):
    """Decorator registering a builder function under `name`, with the
    architecture's facts (see ModelEntry).

    The registered builder takes `dtype=`: a Keras dtype policy name
    ("float32", "mixed_bfloat16") for every layer it builds; None keeps the
    caller's global policy.
    """

    def decorator(fn):
        if name in _MODELS:
            raise ValueError(f"Model {name!r} is registered twice.")

        @functools.wraps(fn)
        def builder(*args, dtype=None, **kwargs):
            if dtype is None:
                return fn(*args, **kwargs)
            with precision.policy(dtype):
                return fn(*args, **kwargs)

        _MODELS[name] = ModelEntry(
            name, builder, family, block, tuple(parameters), paper_params, differs_from_paper,
            dict(paper_top1 or {}), description)
        return builder

    return decorator


def list_models(filter="", with_datasets=False):
    """Sorted names of the buildable models.

    Args:
      filter: optional shell-style pattern, e.g. "hamiltonian-*".
      with_datasets: also list every name with each dataset suffix.
    """
    names = sorted(_MODELS)
    if with_datasets:
        names = names + sorted(f"{m}-{d}" for m in _MODELS for d in DATASETS)
    if filter:
        names = [n for n in names if fnmatch.fnmatch(n, filter)]
    return names


def split_tag(name):
    """(architecture, tag or None) of "<architecture>.<tag>"; the tag is a
    dataset name, optionally followed by "_<variant>"."""
    key = name.strip().lower()
    architecture, dot, tag = key.partition(".")
    return (architecture, tag) if dot else (key, None)


def dataset_of_tag(tag):
    """The dataset a tag names ("cifar10" of "cifar10_long"), or None."""
    for dataset in sorted(DATASETS, key=len, reverse=True):
        if tag == dataset or tag.startswith(dataset + "_"):
            return dataset
    return None


def split_name(name):
    """Splits a model name into (ModelEntry, dataset name or None)."""
    if not isinstance(name, str):
        raise TypeError(f"A model name must be a string, got {type(name).__name__}.")
    key = name.strip().lower()
    if key in _MODELS:
        return _MODELS[key], None
    architecture, tag = split_tag(key)
    dataset = dataset_of_tag(tag) if tag is not None else None
    if dataset and architecture in _MODELS:
        return _MODELS[architecture], dataset
    for dataset in DATASETS:
        suffix = "-" + dataset
        if key.endswith(suffix) and key[: -len(suffix)] in _MODELS:
            return _MODELS[key[: -len(suffix)]], dataset
    close = difflib.get_close_matches(key, list_models(with_datasets=True), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown model {name!r}.{hint} zoo.list_models() lists the architectures; "
        f"each also takes a dataset suffix ({', '.join('-' + d for d in DATASETS)}) "
        f"or a tag (.{next(iter(DATASETS))})."
    )


def get_entry(name):
    return split_name(name)[0]


def build(name, **kwargs):
    """Builds an untrained keras.Model by name.

    Keyword arguments go to the builder (keras.applications signature plus
    reversible, weight_decay, smoothness_decay, h, dtype); they override the
    dataset suffix's classes and input_shape.
    """
    entry, dataset = split_name(name)
    defaults = DATASETS[dataset].builder_args if dataset else {}
    return entry.builder(**{**defaults, **kwargs})
