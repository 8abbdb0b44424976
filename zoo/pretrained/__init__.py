"""Pretrained checkpoints at run time: the manifest (`manifest`: read, look up,
verify), `load` (`loader`) and fine-tuned models a user made
(`finetuned`). Nothing here trains or writes entries; zoo.publish does.

    import zoo
    model = zoo.load("hamiltonian-74-cifar10")
    zoo.info("hamiltonian-74-cifar10")["metrics"]["top1"]
"""

from zoo.errors import ChecksumError, WeightsNotFoundError
from zoo.pretrained.finetuned import load_finetuned, read_card
from zoo.pretrained.loader import copy_matching_weights, default_cache_dir, load, weights_path
from zoo.pretrained.manifest import (
    ENV_CACHE_DIR,
    ENV_MANIFEST,
    ENV_WEIGHTS_DIR,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PREVIEW_SUFFIX,
    PUBLISHING_BAR,
    gap_to_paper,
    has_checkpoint,
    info,
    list_models,
    is_preview,
    list_pretrained,
    manifest_candidates,
    meets_bar,
    plain_name,
    preview_name,
    preview_refusal,
    manifest_path,
    read_manifest,
    release_key,
    release_status,
    sha256,
    verify_file,
    write_manifest,
)

__all__ = [
    "ChecksumError", "ENV_CACHE_DIR", "ENV_MANIFEST", "ENV_WEIGHTS_DIR", "FORMAT_VERSION",
    "MANIFEST_NAME", "PREVIEW_SUFFIX", "PUBLISHING_BAR", "WeightsNotFoundError",
    "copy_matching_weights", "default_cache_dir", "gap_to_paper", "has_checkpoint", "info",
    "is_preview", "list_models", "list_pretrained", "load", "load_finetuned",
    "manifest_candidates", "manifest_path", "meets_bar", "plain_name", "preview_name",
    "preview_refusal",
    "preview_refusal",
    "read_card", "read_manifest", "release_key", "release_status", "sha256", "verify_file",
    "weights_path",
    "write_manifest",
]
