"""Export pretrained zoo models as SavedModels for TF Serving and TF Hub: `zoo export` from a checkout.

`python tools/export.py --help` lists the flags; the command is zoo.cli.export.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import cli  # noqa: E402

if __name__ == "__main__":
    cli.run("export", script="tools/export.py")
