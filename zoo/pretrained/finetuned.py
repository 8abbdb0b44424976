"""Fine-tuned models as users load them: the card of a `zoo.training.finetune`
output directory and the model it describes, its weights verified first."""

import json
import os

from zoo import registry
from zoo.models.backbone import POOLING, assemble
from zoo.pretrained.loader import load
from zoo.pretrained.manifest import verify_file

CARD_FORMAT_VERSION = 1
WEIGHTS_FILE = "finetuned.weights.h5"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"


def build_backbone(architecture, input_shape, pretrained_name=None, **builder_kwargs):
    """The body without classifier, pooled: pretrained weights when
    `pretrained_name` is given, else a random initialisation."""
    if pretrained_name is not None:
        return load(pretrained_name, include_top=False, pooling=POOLING,
                    input_shape=tuple(input_shape), **builder_kwargs)
    return registry.build(architecture, include_top=False, pooling=POOLING,
                          input_shape=tuple(input_shape), **builder_kwargs)


def finetuned_model_args(parent, from_scratch=False):
    """The architecture's builder arguments (say h) that a fine-tune of the
    manifest entry `parent` keeps: those the parent was built with, as
    `load` builds it; none from scratch, where the registry's defaults hold."""
    if from_scratch:
        return {}
    return {k: v for k, v in (parent.get("builder_args") or {}).items()
            if k not in ("classes", "input_shape", "include_top", "pooling")}


def rebuild_classifier(architecture, input_shape, classes, reversible=False, model_args=None):
    """The fine-tuned classifier's structure, float32, random weights."""
    backbone = build_backbone(architecture, input_shape, reversible=reversible, dtype="float32",
                              **(model_args or {}))
    return assemble(backbone, classes)


def read_card(output_dir):
    """The model card dict of a fine-tuning output directory."""
    path = os.path.join(os.fspath(output_dir), CARD_JSON)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {CARD_JSON} in {output_dir}: not the output directory "
                                "of a finished zoo.training.finetune run.")
    with open(path) as f:
        card = json.load(f)
    if card.get("format_version") != CARD_FORMAT_VERSION:
        raise ValueError(f"{path}: card format_version {card.get('format_version')!r}, this "
                         f"zoo reads {CARD_FORMAT_VERSION}.")
    return card


def load_finetuned(output_dir):
    """The fine-tuned keras.Model of an output directory of `finetune`.

    Rebuilds the architecture, classes and input shape the card records and
    loads `finetuned.weights.h5` after checking its sha256 against the card.
    The model takes images of the card's input shape (`prepare_images`
    converts others) and outputs class probabilities; `read_card` gives the
    labels.
    """
    card = read_card(output_dir)
    path = os.path.join(os.fspath(output_dir), card["weights"]["file"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing; the card names it as the weights.")
    verify_file(path, card["weights"]["sha256"], card["weights"].get("bytes"))
    model = rebuild_classifier(card["architecture"], card["input"]["shape"], card["head"]["classes"],
                     card["training"]["engine"] == "reversible",
                     model_args=card.get("model_args"))
    model.load_weights(path)
    return model
