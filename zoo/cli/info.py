"""Describe a pretrained checkpoint, or an architecture.

    {prog} hamiltonian-74-cifar10
    {prog} hamiltonian-74-cifar10 --json
    {prog} midpoint-62

For a pretrained name: its metrics, paper figure, size and weights file from
zoo.info(name) (--json prints the whole manifest entry). For another model
name the network is built (untrained) and its parameters counted.
"""

import json

from absl import app, flags

from zoo import cli  # noqa: E402  (the package, for its shared flags)

FLAGS = flags.FLAGS


def define_flags():
    cli.define_verbose_flag(__name__)
    flags.DEFINE_bool("json", False, "Print the whole manifest entry as JSON.")


def describe_checkpoint(entry):
    """Lines summarising a manifest entry."""
    metrics, weights = entry["metrics"], entry["weights"]
    lines = [
        f"{entry['name']}: {entry['architecture']} ({entry['family']}) trained on "
        f"{entry['dataset']['name']}",
        f"  top-1 {100 * metrics['top1']:.2f}% on {metrics['images']:,} {metrics['split']} "
        f"images ({metrics.get('precision', 'float32')})",
    ]
    if entry.get("flip_tta"):
        lines.append(f"  top-1 with flip TTA (not the headline) "
                     f"{100 * entry['flip_tta']['top1']:.2f}%")
    if entry.get("paper"):
        lines.append(f"  paper: {entry['paper']['top1']:.2f}% ({entry['paper']['source']})")
    if entry.get("robustness"):
        from zoo.research import robustness

        lines.append(f"  robustness: {robustness.summary(entry['robustness'])}")
    lines += [
        f"  parameters {entry['parameters']['total']:,}",
        f"  input {entry['input']['shape']} {entry['input']['dtype']} in "
        f"{entry['input']['value_range']}",
        f"  weights {weights['file']} ({weights['bytes']:,} bytes, sha256 "
        f"{weights['sha256'][:16]}...)",
        f"  labels {', '.join(entry['labels'][:10])}"
        + (f", ... ({len(entry['labels'])})" if len(entry["labels"]) > 10 else ""),
        "  zoo info --json gives the whole entry; MODEL_CARDS.md has the model card.",
    ]
    return lines


def describe_architecture(name):
    """Lines describing a buildable model without a checkpoint."""
    import zoo
    from zoo import registry

    model_entry, dataset = registry.split_name(name)
    model = zoo.build(name)
    lines = [f"{name}: {model_entry.family} architecture, no pretrained checkpoint",
             f"  parameters {model.count_params():,} (built for {dataset or 'the builder defaults'}: "
             f"input {model.input_shape[1:]}, {model.output_shape[-1]} classes)"]
    if model_entry.paper_params:
        lines.append(f"  its paper reports {model_entry.paper_params / 1e6:.2f}M parameters")
    lines.append(f"  reversible engine: {'yes' if model_entry.invertible else 'no (not invertible)'}")
    lines.append(f"  zoo.build({name!r}) gives it untrained; zoo train trains it.")
    return lines


def main(argv):
    import zoo
    from zoo import pretrained, registry
    from zoo.errors import UserError

    if len(argv) != 2:
        raise app.UsageError("Give one model name (zoo list shows them).")
    name = argv[1]
    if pretrained.has_checkpoint(name):
        entry = zoo.info(name)
        print(json.dumps(entry, indent=1) if FLAGS.json else "\n".join(describe_checkpoint(entry)))
        return 0
    try:
        registry.split_name(name)
    except ValueError:
        try:
            zoo.info(name)
        except ValueError as error:  # says what was meant, where it can
            raise UserError(str(error)) from None
    if FLAGS.json:
        raise UserError(f"{name} has no pretrained checkpoint, so no manifest entry to print.")
    print("\n".join(describe_architecture(name)))
    refusal = pretrained.preview_refusal(name)
    if refusal:
        print(f"  {refusal}")
    return 0
