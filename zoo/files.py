"""Files that are whole or absent: atomic writes of text, metrics tables and
weights, so that a run killed mid-write leaves the previous file, never half
of a new one."""

import csv
import json
import os
import tempfile

import keras


class atomic_open:
    """Write to a temporary file in the same directory, then rename."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        self.file = os.fdopen(fd, "w", newline="")
        return self.file

    def __exit__(self, kind, value, traceback):
        self.file.close()
        if kind is None:
            # mkstemp creates 0600 files; give the result the usual permissions.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


def atomic_write(path, text):
    with atomic_open(path) as f:
        f.write(text)


def atomic_save_weights(model, path):
    """The model's weights only: Keras would also store the optimizer's slots
    of a compiled model, doubling the file, so save an uncompiled view of the
    same layers (same structure, loads into the built model)."""
    tmp = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    keras.Model(model.inputs, model.outputs, name=model.name).save_weights(tmp)
    os.replace(tmp, path)


def write_metrics(rows, path_csv, path_json):
    keys = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    atomic_write(path_json, json.dumps(rows, indent=2))
    with atomic_open(path_csv) as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
