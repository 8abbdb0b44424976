"""Measure the robustness of shipped checkpoints (zoo.research.robustness) and record it.

    python tools/robustness.py --model hamiltonian-74-cifar10
    python tools/robustness.py --all --missing_only
    python tools/robustness.py --report_only
    python tools/robustness.py --diagnose 200 --report_only

For each model: accuracy under 8 common corruptions at 5 severities on 2,000
fixed CIFAR-10 test images, and under FGSM and PGD-10 (L∞, ε = 1, 2, 4 /255) on
1,000 of them. The record goes into the manifest (zoo.info(name)["robustness"]);
then MODEL_CARDS.md and docs/robustness/ (table.md, per-model JSON, plots) are
rewritten. New checkpoints get it at registration.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402
from zoo import files

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_multi_string("model", [], "Pretrained model name(s) to measure.")
flags.DEFINE_bool("all", False, "Measure every shipped checkpoint.")
flags.DEFINE_bool("missing_only", False, "Skip checkpoints that already have a record.")
flags.DEFINE_bool("report_only", False, "Only rewrite MODEL_CARDS.md and docs/robustness/.")
flags.DEFINE_string("data_dir", None, "Directory with cifar10.npz (else $ZOO_DATA_DIR).")
flags.DEFINE_integer("diagnose", 0, "Also check the attacks for gradient masking on this many "
                     "images (stronger PGD, transfer between the models) into "
                     "<output_dir>/diagnostics.json.", lower_bound=0)
flags.DEFINE_string("output_dir", os.path.join(ROOT, "docs", "robustness"),
                    "Where the table, records and plots go.")


def main(argv):
    import zoo
    from zoo import model_cards, pretrained
    from zoo.research import robustness

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    names = zoo.list_models(pretrained=True) if FLAGS.all else FLAGS.model
    if not names and not FLAGS.report_only and not FLAGS.diagnose:
        raise app.UsageError("Give --model (one or more), --all, --diagnose or --report_only.")
    manifest_path = pretrained.manifest_path()
    for name in ([] if FLAGS.report_only else names):
        if FLAGS.missing_only and zoo.info(name).get("robustness"):
            print(f"{name}: already measured")
            continue
        record = robustness.measure_pretrained(
            name, data_dir=FLAGS.data_dir, log=lambda text, n=name: print(f"{n}: {text}",
                                                                           flush=True))
        robustness.record_in_manifest(name, record, manifest_path)
        print(f"{name}: {robustness.summary(record)} ({record['seconds']:.0f} s)", flush=True)
    if FLAGS.diagnose:
        import json

        from zoo import data

        split = data.load("cifar10", "test", data_dir=FLAGS.data_dir)
        models = {name: (zoo.load(name, reversible=False),
                         zoo.load(name, reversible=False, classifier_activation=None))
                  for name in (names or zoo.list_models(pretrained=True))}
        found = robustness.diagnose_attacks(models, split, images=FLAGS.diagnose,
                                            log=lambda text: print(text, flush=True))
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        path = os.path.join(FLAGS.output_dir, "diagnostics.json")
        files.atomic_write(path, json.dumps(found, indent=1) + "\n")
        print(f"wrote {path}")
    manifest = pretrained.read_manifest(manifest_path)
    files.atomic_write(os.path.join(ROOT, "MODEL_CARDS.md"), model_cards.render(manifest))
    for path in robustness.write_report(manifest, FLAGS.output_dir).values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("robustness.py", main, argv))
