"""Write MODEL_CARDS.md from the checkpoint manifest.

    python tools/model_cards.py            # rewrite MODEL_CARDS.md
    python tools/model_cards.py --check    # exit 1 if it is out of date
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import runtime  # noqa: E402

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up messages.")
flags.DEFINE_string("manifest", os.path.join(ROOT, "checkpoints", "manifest.json"),
                    "The checkpoint manifest.")
flags.DEFINE_string("output", os.path.join(ROOT, "MODEL_CARDS.md"), "The file to write.")
flags.DEFINE_bool("check", False, "Only check that the file is up to date.")


def main(argv):
    from zoo import model_cards, pretrained

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    text = model_cards.render(pretrained.read_manifest(FLAGS.manifest))
    if FLAGS.check:
        current = open(FLAGS.output).read() if os.path.exists(FLAGS.output) else ""
        if current != text:
            print(f"{FLAGS.output} is out of date: run python tools/model_cards.py")
            return 1
        print(f"{FLAGS.output} is up to date.")
        return 0
    with open(FLAGS.output, "w") as f:
        f.write(text)
    print(f"Wrote {FLAGS.output}.")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: runtime.run_tool("model_cards.py", main, argv))
