"""`load`: a keras.Model with a checkpoint's weights, found and verified
where the manifest says (see zoo.pretrained.manifest for the places)."""

import os

from zoo import registry
from zoo.errors import ChecksumError, WeightsNotFoundError
from zoo.pretrained.manifest import (
    ENV_CACHE_DIR,
    ENV_WEIGHTS_DIR,
    info,
    manifest_path,
    verify_file,
)


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
