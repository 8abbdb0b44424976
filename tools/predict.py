"""Classify image files with a zoo model: `zoo predict` from a checkout.

`python tools/predict.py --help` lists the flags; the command is zoo.cli.predict.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's start-up messages stay hidden unless --verbose (zoo.runtime).
os.environ.setdefault("ZOO_QUIET", "0" if "--verbose" in sys.argv else "1")

from zoo import cli  # noqa: E402

if __name__ == "__main__":
    cli.run("predict", script="tools/predict.py")
