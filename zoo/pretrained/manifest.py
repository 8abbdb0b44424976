"""Pretrained checkpoints: the manifest, `load`, `info`.

The manifest (`checkpoints/manifest.json`) has one entry per checkpoint,
keyed by the model name users pass to `load` ("hamiltonian-74-cifar10"): the
architecture and builder arguments, dataset, input spec, labels, parameter
count, weights file with its sha256 and size, measured metrics, the training
recipe as it ran, license and citations. zoo.publish writes entries
(`tools/register_checkpoint.py`) and renders MODEL_CARDS.md from them; this
module only reads them.

Where weights are looked for, in order:
  1. `weights_dir=` or $ZOO_WEIGHTS_DIR, if given (and only there);
  2. the directory of the manifest: `checkpoints/` of a source checkout, or
     `<prefix>/share/zoo/checkpoints` where the package was pip-installed;
  3. the cache directory (`cache_dir=`, $ZOO_CACHE_DIR or ~/.cache/zoo),
     into which an entry with a `url` is downloaded on first use.
A checkpoint is offered under its plain name ("leapfrog-26-cifar10") only when
its CIFAR-10 test top-1 is within `PUBLISHING_BAR` points of its paper's figure;
weights below the bar are previews, keyed "<architecture>.<dataset>_preview"
("leapfrog-26.cifar10_preview"), and the plain name of a preview-only network
fails with the name to use. Registration (zoo.publish) keys entries so.

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
from zoo.errors import ChecksumError


MANIFEST_NAME = "manifest.json"


FORMAT_VERSION = 1


ENV_WEIGHTS_DIR = "ZOO_WEIGHTS_DIR"


ENV_CACHE_DIR = "ZOO_CACHE_DIR"


ENV_MANIFEST = "ZOO_MANIFEST"


# Points of top-1 a checkpoint may lie below its paper's figure and still be
# offered under the network's plain name.
PUBLISHING_BAR = 1.5


PREVIEW_SUFFIX = "_preview"


def plain_name(name):
    """The name a checkpoint meeting the bar is offered under:
    "leapfrog-26-cifar10" of "leapfrog-26.cifar10_preview", of
    "leapfrog-26.cifar10" and of itself; "<architecture>.<dataset>_<variant>"
    for a variant."""
    key = name.strip().lower()
    if key.endswith(PREVIEW_SUFFIX):
        key = key[: -len(PREVIEW_SUFFIX)]
    model, dataset = registry.split_name(key)
    if dataset is None:
        raise ValueError(f"{name!r} has no dataset suffix; a checkpoint name needs one.")
    tag = registry.split_tag(key)[1]
    return f"{model.name}-{dataset}" if tag in (None, dataset) else f"{model.name}.{tag}"


def preview_name(name):
    """The name a preview of checkpoint `name` is offered under:
    "leapfrog-26-cifar10" -> "leapfrog-26.cifar10_preview"."""
    plain = plain_name(name)
    architecture, tag = registry.split_tag(plain)
    if tag is None:
        model, tag = registry.split_name(plain)
        architecture = model.name
    return f"{architecture}.{tag}{PREVIEW_SUFFIX}"


def gap_to_paper(entry):
    """Points of test top-1 below the paper's figure (negative above it), or
    None when the paper reports none for this network and dataset."""
    paper = entry.get("paper") or {}
    if paper.get("top1") is None:
        return None
    return round(paper["top1"] - 100 * entry["metrics"]["top1"], 2)


def meets_bar(entry):
    """Whether a manifest entry may be offered under its plain name: within
    PUBLISHING_BAR points of its paper. Without a paper figure there is
    nothing to meet, so it stays a preview."""
    gap = gap_to_paper(entry)
    return gap is not None and gap <= PUBLISHING_BAR


def release_status(entry):
    """"shipped" for an entry that meets the bar, else "preview"."""
    return "shipped" if meets_bar(entry) else "preview"


def is_preview(name):
    """Whether a manifest key names a preview."""
    return name.endswith(PREVIEW_SUFFIX)


def release_key(entry):
    """The manifest key an entry belongs under, by the bar: its plain name,
    or its preview name."""
    return plain_name(entry["name"]) if meets_bar(entry) else preview_name(entry["name"])


def _package_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def list_pretrained(filter="", previews=True):
    """Sorted names of the models with shipped weights: those that meet the
    publishing bar and, with `previews`, the previews' names."""
    import fnmatch

    names = sorted(n for n in read_manifest()["checkpoints"] if previews or not is_preview(n))
    return [n for n in names if fnmatch.fnmatch(n, filter)] if filter else names


def list_models(filter="", with_datasets=False, pretrained=False, previews=True):
    """Sorted names of the buildable models (`zoo.registry.list_models`), or
    with `pretrained` of the models with shipped weights (`zoo.load`).

    Args:
      filter: optional shell-style pattern, e.g. "hamiltonian-*".
      with_datasets: also list every architecture with each dataset suffix.
      pretrained: list only the models with shipped weights.
      previews: with `pretrained`, also list the checkpoints below the
        publishing bar ("<architecture>.<dataset>_preview").
    """
    if pretrained:
        return list_pretrained(filter, previews=previews)
    return registry.list_models(filter, with_datasets=with_datasets)


def info(name):
    """The manifest entry of a pretrained model, as a dict (a copy).

    `name` is a manifest key ("hamiltonian-74-cifar10") or the same
    checkpoint as "<architecture>.<tag>" ("hamiltonian-74.cifar10"): the
    entry "<architecture>-<dataset>" is the default checkpoint of its tag.
    """
    checkpoints = read_manifest()["checkpoints"]
    key = checkpoint_key(name, checkpoints)
    if key is not None:
        return checkpoints[key]
    raise ValueError(_unknown_message(name, checkpoints))


def has_checkpoint(name):
    """Whether `name` (either form) has a shipped checkpoint."""
    return checkpoint_key(name, read_manifest()["checkpoints"]) is not None


def checkpoint_key(name, checkpoints):
    """The manifest key `name` refers to, or None."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key in checkpoints:
        return key
    architecture, tag = registry.split_tag(key)
    if tag is not None and f"{architecture}-{tag}" in checkpoints:
        return f"{architecture}-{tag}"
    return None


def preview_refusal(name, checkpoints=None):
    """The one line that refuses the plain name of a network whose only
    checkpoint is a preview, naming the preview's tag; None for any other name."""
    if not isinstance(name, str):
        return None
    checkpoints = read_manifest()["checkpoints"] if checkpoints is None else checkpoints
    try:
        _, dataset = registry.split_name(name)
    except ValueError:
        return None
    # Only the plain name ("-cifar10" or ".cifar10") points at the preview.
    if dataset is None or registry.split_tag(name)[1] not in (None, dataset):
        return None
    preview = checkpoints.get(preview_name(name))
    if preview is None or checkpoint_key(name, checkpoints) is not None:
        return None
    gap = gap_to_paper(preview)
    return (f"{name!r} has only a preview checkpoint, "
            f"{100 * preview['metrics']['top1']:.2f}% top-1"
            + (f", {gap:.2f} points below its paper's {preview['paper']['top1']:.2f}%"
               if gap is not None else ", with no paper figure to meet")
            + f" (the bar is {PUBLISHING_BAR} points): load it as {preview['name']!r}.")


def _unknown_message(name, checkpoints):
    if not isinstance(name, str):
        return f"A model name must be a string, got {type(name).__name__}."
    refusal = preview_refusal(name, checkpoints)
    if refusal:
        return refusal
    pretrained = sorted(checkpoints)
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
