"""Robustness of trained classifiers: common corruptions and L∞ attacks.

The papers argue that Hamiltonian, MidPoint and Leapfrog networks are stable:
small changes of the input stay small through any depth (zoo.research.analysis checks
this block by block). This module measures what that means for a trained
classifier, the same way for every checkpoint:

* Common corruptions in the style of CIFAR-10-C (Hendrycks & Dietterich,
  ICLR 2019), generated in code with its constants for 32×32 images: Gaussian
  noise, shot noise, Gaussian blur, defocus blur, contrast, brightness, JPEG
  compression and pixelation, at severities 1-5 (0 is the identity). Noise
  is drawn from a generator seeded by (seed, corruption, severity), so a
  corrupted set is the same for every model and every run. Our blur kernels,
  JPEG codec (TensorFlow's libjpeg) and resampling are not the original
  code's: the figures are comparable between our models, not digit for
  digit with published CIFAR-10-C numbers.
* Adversarial examples: FGSM and PGD (L∞, 10 steps of 2.5ε/10 from a random
  start in the ε-ball, Madry et al. 2018) at ε = 1/255, 2/255, 4/255 of the
  [0, 255] pixel range, against the cross-entropy of the true class, on the
  logits of the plain-autodiff twin of the model (`reversible=False`: the same
  weights and forward pass; its input gradients equal the reversible engine's,
  tested). Adversarial images stay in [0, 255] and are not rounded to
  integers.

The images are a fixed subset of the CIFAR-10 test split: `SUBSET_IMAGES`
chosen by a seeded permutation; the attacks use its first `ATTACK_IMAGES`.
`measure` returns the record that goes into a checkpoint's manifest entry under
"robustness" (`zoo.info(name)["robustness"]`), with `checks`: a few figures on
the first `CHECK_IMAGES` images that the tests recompute.
"""

import collections
import hashlib
import json
import math
import platform
import time

import numpy as np
import tensorflow as tf

SEED = 0
SUBSET_IMAGES = 2000
ATTACK_IMAGES = 1000
CHECK_IMAGES = 100
SEVERITIES = (1, 2, 3, 4, 5)
EPSILONS = (1, 2, 4)  # in units of 1/255 of the pixel range
PGD_STEPS = 10
PGD_STEP_FRACTION = 2.5  # step size = PGD_STEP_FRACTION * ε / PGD_STEPS
BATCH = 100

# CIFAR-10-C's constants for 32×32 images, per severity 1-5.
CONSTANTS = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),        # noise std, [0, 1] scale
    "shot_noise": (500, 250, 100, 75, 50),                  # photons per unit intensity
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),             # sigma, pixels
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)),  # radius, alias sigma
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),                # factor towards the channel mean
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),              # added to HSV value
    "jpeg_compression": (80, 65, 58, 50, 40),               # JPEG quality
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),              # size factor of the coarse image
}
CORRUPTIONS = tuple(CONSTANTS)
CHECKS = (("gaussian_noise", 3), ("contrast", 3), ("jpeg_compression", 3))
CHECK_EPSILON = 2


# Corruptions
# --------------------------------------------------------------------------
def _rng(seed, corruption, severity):
    return np.random.default_rng([seed, CORRUPTIONS.index(corruption), severity])


def _gaussian_kernel_1d(sigma, truncate=4.0):
    radius = max(1, int(math.ceil(truncate * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _convolve(images, kernel):
    """Each channel of float images (N, H, W, C) with a 2-D kernel, the border
    extended by reflection."""
    kh, kw = kernel.shape
    padded = np.pad(images, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)),
                    mode="reflect")
    channels = images.shape[-1]
    filters = np.tile(kernel[:, :, None, None], (1, 1, channels, 1)).astype(np.float32)
    out = tf.nn.depthwise_conv2d(padded.astype(np.float32), filters, strides=[1, 1, 1, 1],
                                 padding="VALID")
    return out.numpy().astype(np.float64)


def _defocus_kernel(radius, alias_sigma):
    """A disk of `radius` pixels, smoothed by a 3×3 Gaussian against aliasing."""
    size = max(1, int(math.ceil(radius)))
    x = np.arange(-size - 1, size + 2, dtype=np.float64)
    xx, yy = np.meshgrid(x, x)
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    smooth = _gaussian_kernel_1d(alias_sigma, truncate=1.0 / alias_sigma)[:, None]
    smooth = (smooth @ smooth.T)
    smooth /= smooth.sum()
    kernel = _convolve(disk[None, :, :, None], smooth)[0, :, :, 0]
    return kernel / kernel.sum()


def corrupt(images, corruption, severity, seed=SEED):
    """`images` (uint8, (N, H, W, 3)) with `corruption` at `severity` (0-5; 0
    returns them unchanged), as uint8. Deterministic for a given seed."""
    if corruption not in CONSTANTS:
        raise ValueError(f"Unknown corruption {corruption!r}; choose from {list(CORRUPTIONS)}.")
    if severity not in (0, *SEVERITIES):
        raise ValueError(f"severity must be 0-5, got {severity!r}.")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"Expected uint8 images (N, H, W, 3), got {images.dtype} "
                         f"{images.shape}.")
    if severity == 0:
        return images.copy()
    c = CONSTANTS[corruption][severity - 1]
    x = images.astype(np.float64) / 255.0
    if corruption == "gaussian_noise":
        x = x + _rng(seed, corruption, severity).normal(0.0, c, x.shape)
    elif corruption == "shot_noise":
        x = _rng(seed, corruption, severity).poisson(x * c) / c
    elif corruption == "gaussian_blur":
        k = _gaussian_kernel_1d(c)
        x = _convolve(x, k[:, None] @ k[None, :])
    elif corruption == "defocus_blur":
        x = _convolve(x, _defocus_kernel(*c))
    elif corruption == "contrast":
        means = x.mean(axis=(1, 2), keepdims=True)
        x = (x - means) * c + means
    elif corruption == "brightness":
        hsv = tf.image.rgb_to_hsv(x.astype(np.float32)).numpy()
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0.0, 1.0)
        x = tf.image.hsv_to_rgb(hsv).numpy().astype(np.float64)
    elif corruption == "jpeg_compression":
        x = np.stack([tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=c)).numpy()
                      for image in images]).astype(np.float64) / 255.0
    elif corruption == "pixelate":
        height, width = images.shape[1:3]
        small = tf.image.resize(x, (int(height * c), int(width * c)), method="area")
        x = tf.image.resize(small, (height, width), method="nearest").numpy()
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


# Attacks
# --------------------------------------------------------------------------
# Tracing a network's forward pass or input gradient takes seconds, and one
# measurement runs some 80 forward passes and 7 attacks on the same models:
# the traced functions of the last few models are kept. Each entry holds its
# model, so an id() here always names the model it was made for.
_TRACED = collections.OrderedDict()
_TRACED_KEPT = 8


def _traced(model, kind, make):
    key = (id(model), kind)
    if key in _TRACED:
        _TRACED.move_to_end(key)
    else:
        _TRACED[key] = (model, make(model))
        while len(_TRACED) > _TRACED_KEPT:
            _TRACED.popitem(last=False)
    return _TRACED[key][1]


def _make_gradient_fn(logits_model):
    @tf.function(reduce_retracing=True)
    def gradient(images, labels):
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = tf.cast(logits_model(images, training=False), tf.float32)
            loss = tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True))
        return tape.gradient(loss, images), loss

    return gradient


def _gradient_fn(logits_model):
    return _traced(logits_model, "input_gradient", _make_gradient_fn)


def _make_forward_fn(model):
    @tf.function(reduce_retracing=True)
    def forward(images):
        return tf.cast(model(images, training=False), tf.float32)

    return forward


def predicted_classes(model, images, batch_size=BATCH):
    """The arg-max class of `model` for each image, in batches (what
    np.argmax(model.predict(images)) gives, without predict's per-call cost)."""
    forward = _traced(model, "forward", _make_forward_fn)
    images = np.asarray(images, np.float32)
    return np.concatenate([
        np.argmax(forward(tf.constant(images[start:start + batch_size])).numpy(), axis=-1)
        for start in range(0, len(images), batch_size)])


def input_gradient(logits_model, images, labels):
    """(∇ of the summed cross-entropy with respect to the images, the loss)."""
    gradient, loss = _gradient_fn(logits_model)(
        tf.constant(images, tf.float32), tf.constant(labels, tf.int32))
    return gradient.numpy(), float(loss.numpy())


def attack(logits_model, images, labels, epsilon, steps=0, seed=SEED, batch_size=BATCH):
    """Adversarial images for `logits_model` (float32 logits of images in
    [0, 255]): FGSM with steps=0, else PGD with `steps` steps of
    PGD_STEP_FRACTION * ε / steps from a uniform random start in the ε-ball.
    `epsilon` is in pixel units of [0, 255]."""
    gradient = _gradient_fn(logits_model)
    rng = np.random.default_rng([seed, int(round(epsilon * 1000)), steps])
    out = []
    for start in range(0, len(images), batch_size):
        x0 = tf.constant(images[start:start + batch_size], tf.float32)
        y = tf.constant(labels[start:start + batch_size], tf.int32)
        if steps == 0:
            g, _ = gradient(x0, y)
            x = tf.clip_by_value(x0 + epsilon * tf.sign(g), 0.0, 255.0)
        else:
            noise = rng.uniform(-epsilon, epsilon, x0.shape).astype(np.float32)
            x = tf.clip_by_value(x0 + noise, 0.0, 255.0)
            step = PGD_STEP_FRACTION * epsilon / steps
            for _ in range(steps):
                g, _ = gradient(x, y)
                x = tf.clip_by_value(x + step * tf.sign(g), x0 - epsilon, x0 + epsilon)
                x = tf.clip_by_value(x, 0.0, 255.0)
        out.append(x.numpy())
    return np.concatenate(out)


# Measurement
# --------------------------------------------------------------------------
def subset(split, images=SUBSET_IMAGES, seed=SEED):
    """The fixed evaluation subset of a split: (images, labels, indices)."""
    if images > len(split):
        raise ValueError(f"{images} images asked for, the split has {len(split)}.")
    indices = np.sort(np.random.default_rng(seed).permutation(len(split))[:images])
    return split.images[indices], np.asarray(split.labels)[indices], indices


def accuracy(model, images, labels, batch_size=BATCH):
    return float(np.mean(predicted_classes(model, images, batch_size) == labels))


def measure(model, logits_model, split, *, images=SUBSET_IMAGES, attack_images=ATTACK_IMAGES,
            check_images=CHECK_IMAGES, seed=SEED, log=None):
    """The robustness record of one classifier on `split` (see the module
    docstring). `model` gives probabilities, `logits_model` is its
    plain-autodiff twin without the softmax. Takes minutes: 40 corrupted
    copies of the subset and 3 × (1 + 10) gradient passes over the attack
    images."""
    start = time.perf_counter()
    x, y, indices = subset(split, images, seed)
    record = {
        "protocol": {
            "dataset": split.name, "split": split.split, "images": int(len(x)),
            "attack_images": int(min(attack_images, len(x))), "seed": seed,
            "indices_sha256": hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest(),
            "corruptions": {name: list(values) for name, values in CONSTANTS.items()},
            "epsilons": [f"{e}/255" for e in EPSILONS],
            "pgd": {"steps": PGD_STEPS, "step": f"{PGD_STEP_FRACTION:g}*eps/{PGD_STEPS}",
                    "random_start": True, "norm": "Linf"},
            "model": "plain-autodiff twin (reversible=False), float32",
        },
        "clean_top1": accuracy(model, x, y),
        "corruptions": {},
    }
    for corruption in CORRUPTIONS:
        record["corruptions"][corruption] = [
            accuracy(model, corrupt(x, corruption, severity, seed), y)
            for severity in SEVERITIES]
        if log:
            log(f"{corruption}: " + ", ".join(f"{a:.3f}" for a in record["corruptions"][corruption]))
    record["mean_corruption_accuracy"] = float(np.mean(list(record["corruptions"].values())))

    xa, ya = x[:attack_images], y[:attack_images]
    adversarial = {"clean_top1": accuracy(model, xa, ya), "fgsm": {}, "pgd": {}}
    for epsilon in EPSILONS:
        key = f"{epsilon}/255"
        adversarial["fgsm"][key] = accuracy(model, attack(logits_model, xa, ya, epsilon, 0, seed), ya)
        adversarial["pgd"][key] = accuracy(
            model, attack(logits_model, xa, ya, epsilon, PGD_STEPS, seed), ya)
        if log:
            log(f"eps {key}: FGSM {adversarial['fgsm'][key]:.3f}, "
                f"PGD {adversarial['pgd'][key]:.3f}")
    record["adversarial"] = adversarial
    record["checks"] = checks(model, logits_model, split, min(check_images, len(x)), seed,
                              subset_images=len(x))
    record["seconds"] = round(time.perf_counter() - start, 1)
    record["machine"] = f"{platform.processor() or platform.machine()}, TensorFlow {tf.__version__}"
    return record


def checks(model, logits_model, split, images=CHECK_IMAGES, seed=SEED,
           subset_images=SUBSET_IMAGES):
    """A few figures on the first `images` images of the subset, cheap enough
    for the tests to recompute: accuracy under CHECKS and under PGD at
    CHECK_EPSILON/255."""
    x, y, _ = subset(split, subset_images, seed)
    x, y = x[:images], y[:images]
    found = {"images": int(len(x))}
    for corruption, severity in CHECKS:
        found[f"{corruption}_{severity}"] = accuracy(model, corrupt(x, corruption, severity,
                                                                    seed), y)
    found[f"pgd_{CHECK_EPSILON}/255"] = accuracy(
        model, attack(logits_model, x, y, CHECK_EPSILON, PGD_STEPS, seed), y)
    return found


def measure_built(build, split, log=None):
    """`measure` for the network `build(**kwargs)` makes (a zoo builder with
    its weights), in float32, on at most the standard subset of `split`."""
    from zoo import precision

    with precision.policy("float32"):
        model = build(reversible=False)
        logits = build(reversible=False, classifier_activation=None)
    images = min(SUBSET_IMAGES, len(split))
    return measure(model, logits, split, images=images,
                   attack_images=min(ATTACK_IMAGES, images), log=log)


def measure_pretrained(name, data_dir=None, log=None):
    """`measure` for the shipped checkpoint `name`."""
    from zoo import data, pretrained

    entry = pretrained.info(name)
    split = data.load(entry["dataset"]["name"], "test", data_dir=data_dir)
    return measure_built(lambda **kwargs: pretrained.load(name, **kwargs), split, log=log)


def summary(record):
    """One line of the main figures."""
    adv = record["adversarial"]
    return (f"on {record['protocol']['images']:,} fixed test images, clean "
            f"{100 * record['clean_top1']:.1f}%, mean corruption "
            f"{100 * record['mean_corruption_accuracy']:.1f}%, PGD "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in adv["pgd"].items()))


def to_json(record):
    return json.dumps(record, indent=1)


def diagnose_attacks(models, split, images=200, epsilon=2, seed=SEED, log=None):
    """Checks that PGD-10 is not overestimating robustness by gradient
    masking (Athalye et al. 2018), on the first `images` of the subset, at
    `epsilon`/255, for `models` {name: (model, logits_model)}:

    * stronger attacks: PGD with 50 steps, and the worst of 3 random starts
      of PGD-50 (per image), must not find much more than PGD-10 did;
    * transfer: PGD-10 examples made on each other model, which use no
      gradient of the target; masked gradients show as transfer attacks
      beating the target's own.

    Returns {name: {"pgd10": acc, "pgd50": acc, "pgd50_3_starts": acc,
    "transfer_from": {source: acc}}}."""
    x, y, _ = subset(split, SUBSET_IMAGES if len(split) >= SUBSET_IMAGES else len(split), seed)
    x, y = x[:images], y[:images]
    found, crafted = {}, {}
    for name, (model, logits) in models.items():
        crafted[name] = attack(logits, x, y, epsilon, PGD_STEPS, seed)
        worst = np.ones(len(x), bool)
        pgd50 = None
        for start in range(3):
            adversarial = attack(logits, x, y, epsilon, 50, seed + start)
            correct = predicted_classes(model, adversarial) == y
            pgd50 = float(correct.mean()) if start == 0 else pgd50
            worst &= correct
        found[name] = {"pgd10": accuracy(model, crafted[name], y), "pgd50": pgd50,
                       "pgd50_3_starts": float(worst.mean())}
        if log:
            log(f"{name}: {found[name]}")
    for name, (model, _) in models.items():
        found[name]["transfer_from"] = {source: accuracy(model, crafted[source], y)
                                        for source in models if source != name}
    return {"images": int(len(x)), "epsilon": f"{epsilon}/255", "models": found}


# Recording
# --------------------------------------------------------------------------
def record_in_manifest(name, record, manifest_path):
    """Puts `record` under "robustness" of checkpoint `name` in the manifest
    at `manifest_path` (written atomically; nothing else changes)."""
    from zoo import pretrained

    manifest = pretrained.read_manifest(manifest_path)
    if name not in manifest["checkpoints"]:
        raise ValueError(f"{name} is not in {manifest_path}.")
    manifest["checkpoints"][name]["robustness"] = record
    pretrained.write_manifest(manifest, manifest_path)


def _measured(manifest):
    """{name: robustness record} of the checkpoints that have one, by name."""
    return {name: entry["robustness"] for name, entry in sorted(manifest["checkpoints"].items())
            if entry.get("robustness")}


def _save(figure, axes, xlabel, path):
    axes.set_xlabel(xlabel)
    axes.set_ylabel("top-1 accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def table(manifest):
    """Markdown: one row per measured checkpoint, side by side."""
    measured = _measured(manifest)
    header = ("| model | clean | mean corruption | "
              + " | ".join(c.replace("_", " ") for c in CORRUPTIONS)
              + " | " + " | ".join(f"FGSM {e}/255" for e in EPSILONS)
              + " | " + " | ".join(f"PGD {e}/255" for e in EPSILONS) + " |")
    rows = [header, "| --- " * (3 + len(CORRUPTIONS) + 2 * len(EPSILONS)) + "|"]
    for name, record in measured.items():
        adversarial = record["adversarial"]
        cells = ([name, _pct(record["clean_top1"]), f"**{_pct(record['mean_corruption_accuracy'])}**"]
                 + [_pct(float(np.mean(record["corruptions"][c]))) for c in CORRUPTIONS]
                 + [_pct(adversarial["fgsm"][f"{e}/255"]) for e in EPSILONS]
                 + [_pct(adversarial["pgd"][f"{e}/255"]) for e in EPSILONS])
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def _pct(value):
    return f"{100 * value:.1f}%"


def plot(manifest, path_corruptions, path_attacks):
    """Two figures, one line per model: accuracy against corruption severity
    (mean over corruptions, severity 0 = clean) and against ε (PGD solid,
    FGSM dashed)."""
    from zoo.plotting import new_figure

    measured = _measured(manifest)
    figure = new_figure(6.5, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for name, record in measured.items():
        means = [record["clean_top1"]] + [
            float(np.mean([record["corruptions"][c][s - 1] for c in CORRUPTIONS]))
            for s in SEVERITIES]
        axes.plot(range(0, 6), [100 * m for m in means], marker="o", label=name)
    _save(figure, axes, "corruption severity (mean over corruptions; 0 = clean)",
          path_corruptions)

    figure = new_figure(6.5, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for index, (name, record) in enumerate(measured.items()):
        adversarial = record["adversarial"]
        color = f"C{index % 10}"
        xs = [0, *EPSILONS]
        axes.plot(xs, [100 * adversarial["clean_top1"]] + [
            100 * adversarial["pgd"][f"{e}/255"] for e in EPSILONS], marker="o", color=color,
            label=f"{name} PGD")
        axes.plot(xs, [100 * adversarial["clean_top1"]] + [
            100 * adversarial["fgsm"][f"{e}/255"] for e in EPSILONS], linestyle="--",
            color=color, alpha=0.6)
    _save(figure, axes, "ε (× 1/255), L∞; solid PGD-10, dashed FGSM", path_attacks)


def write_report(manifest, output_dir):
    """docs/robustness/: table.md, per-model JSON records and the two plots;
    returns the paths written."""
    import os

    os.makedirs(output_dir, exist_ok=True)
    paths = {"table": os.path.join(output_dir, "table.md"),
             "corruptions": os.path.join(output_dir, "corruptions.png"),
             "attacks": os.path.join(output_dir, "attacks.png")}
    with open(paths["table"], "w") as f:
        f.write(table(manifest))
    for name, entry in manifest["checkpoints"].items():
        if entry.get("robustness"):
            path = os.path.join(output_dir, f"{name}.json")
            with open(path, "w") as f:
                f.write(to_json(entry["robustness"]) + "\n")
            paths[name] = path
    plot(manifest, paths["corruptions"], paths["attacks"])
    return paths
