"""List the zoo's architectures, or its pretrained checkpoints.

    {prog}
    {prog} --pretrained
    {prog} "hamiltonian-*"

Without flags: every architecture (each takes a -cifar10, -cifar100 or -stl10
suffix). --pretrained: the checkpoints zoo.load gives, with their top-1, the
paper's, the gap, and whether each ships under its plain name or is a preview
below the publishing bar (loaded by its "<architecture>.<dataset>_preview" name),
and the weights file. An argument filters the names (shell-style pattern). The same
lists as zoo.list_models() and zoo.list_models(pretrained=True).
"""

import json

from absl import app, flags

from zoo import cli  # noqa: E402  (the package, for its shared flags)

FLAGS = flags.FLAGS


def define_flags():
    cli.define_verbose_flag(__name__)
    flags.DEFINE_bool("pretrained", False, "List the pretrained checkpoints instead.")
    flags.DEFINE_bool("json", False, "Print JSON instead of a table.")


def rows(pattern="", pretrained=False):
    """One dict per listed model: name, family and the parameter count its
    paper reports, or, for checkpoints, test top-1, the paper's top-1, the gap
    in points, status ("shipped" or "preview"), parameters and the weights
    file."""
    import zoo
    # Not `pretrained`: that name is the argument saying what to list.
    from zoo.pretrained import gap_to_paper, release_status
    from zoo import registry

    if not pretrained:
        return [{"name": name, "family": registry.split_name(name)[0].family,
                 "paper_params": registry.split_name(name)[0].paper_params}
                for name in zoo.list_models(pattern)]
    found = []
    for name in zoo.list_models(pattern, pretrained=True):
        entry = zoo.info(name)
        paper = entry.get("paper") or {}
        found.append({"name": name, "top1": entry["metrics"]["top1"],
                      "paper_top1": paper.get("top1"),
                      "gap_points": gap_to_paper(entry),
                      "status": release_status(entry),
                      "parameters": entry["parameters"]["total"],
                      "weights": entry["weights"]["file"]})
    return found


def main(argv):
    if len(argv) > 2:
        raise app.UsageError(f"Give at most one filter, got {' '.join(argv[1:])}")
    listed = rows(argv[1] if len(argv) > 1 else "", FLAGS.pretrained)
    if FLAGS.json:
        print(json.dumps(listed, indent=1))
        return 0
    if not listed:
        print("No model matches.")
        return 0
    width = max(len(row["name"]) for row in listed)
    for row in listed:
        if FLAGS.pretrained:
            paper = (f"paper {row['paper_top1']:.2f}% (gap {row['gap_points']:.2f})"
                     if row["paper_top1"] else "paper -")
            print(f"{row['name'].ljust(width)}  {row['status'].ljust(7)}  "
                  f"top-1 {100 * row['top1']:.2f}%  {paper}  "
                  f"{row['parameters']:,} parameters  {row['weights']}")
        else:
            params = (f"{row['paper_params'] / 1e6:.2f}M parameters in its paper"
                      if row["paper_params"] else "")
            print(f"{row['name'].ljust(width)}  {row['family']}  {params}".rstrip())
    return 0
