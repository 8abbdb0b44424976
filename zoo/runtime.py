"""Process-wide TensorFlow settings that must be chosen before TensorFlow is
imported.

TensorFlow turns its oneDNN kernels on by default only on CPUs with
AVX512-VNNI, AVX512-BF16 or AMX. On AVX2-only CPUs (the AMD EPYC machines we
train on) it runs the slower Eigen kernels unless TF_ENABLE_ONEDNN_OPTS=1 is
set before the import: Hamiltonian-74 trained at 58-60 img/s with it and 36
without (float32, batch 128, issue #22). oneDNN sums in another order, so
results differ from Eigen's in the last bits.
"""

import os
import sys

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def enable_fast_cpu_kernels(environ=None, modules=None):
    """Asks TensorFlow for its oneDNN kernels unless the user has chosen
    (TF_ENABLE_ONEDNN_OPTS=0 turns them off) or TensorFlow is already
    imported (the setting would have no effect). Returns the setting in
    force, or None where it was left to TensorFlow."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if ONEDNN_ENV not in environ and "tensorflow" not in modules:
        environ[ONEDNN_ENV] = "1"
    return environ.get(ONEDNN_ENV)


# The CPU allocator that keeps peak-memory statistics, chosen before
# TensorFlow starts (zoo.analysis reads them).
ALLOCATOR_STATS_ENV = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


def call_isolated(module, function, env=None, **kwargs):
    """Runs `module.function(**kwargs)` in a fresh Python process with the
    allocator statistics on, and returns its JSON result: for measurements that
    need TensorFlow set up anew (thread pools, allocator, oneDNN), and for work
    whose memory should not stay in this process. `env` adds to the process's
    environment."""
    import json
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import json, sys; from {module} import {function} as f; "
            "print('RESULT ' + json.dumps(f(**json.loads(sys.argv[1]))))")
    environ = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CPP_MIN_LOG_LEVEL="3", **ALLOCATOR_STATS_ENV, **(env or {}))
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True,
                          text=True, env=environ, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{module}.{function}({kwargs}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])
