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
# TensorFlow starts (zoo.research.analysis reads them).
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


QUIET_ENV = "ZOO_QUIET"


def quiet_requested(environ=None, argv=None):
    """Whether TensorFlow's start-up messages should be hidden: the tools ask
    for it (ZOO_QUIET=1) unless run with --verbose. The `zoo` command (console
    script or `python -m zoo`) cannot set the variable in time (this package
    is imported before zoo.cli runs), so it is recognised by its program
    name; ZOO_QUIET=0 still shows the messages."""
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    if QUIET_ENV in environ:
        return environ[QUIET_ENV] == "1"
    # Python sets argv[0] to "-m" while it imports the package of
    # `python -m zoo`, and to the script's path for the console script.
    program = (argv[0] or "") if argv else ""
    return (program == "-m" or os.path.basename(program) == "zoo") and "--verbose" not in argv


def run_tool(name, main, argv):
    """Runs a tool's `main(argv)`, printing a user error (or a usage error,
    absl's app.UsageError) as one line "<name>: error: ..." with exit status 2
    instead of a traceback."""
    from absl import app

    from zoo import errors

    try:
        return main(argv)
    except BrokenPipeError:
        # The reader went away (`zoo predict ... | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except app.UsageError as error:
        print(f"{name}: error: {error} (see {name} --help)", file=sys.stderr)
        return 2
    except errors.USER_ERRORS as error:
        print(f"{name}: error: {user_message(error)}", file=sys.stderr)
        return 2
    except errors.WORK_FAILURES as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 1


def user_message(error):
    """An exception as the one line a user reads: an OS error says what and
    which file, without its errno."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.strerror}: {error.filename}"
    if isinstance(error, KeyError) and len(error.args) == 1:  # str() would quote it
        return str(error.args[0])
    return str(error).strip() or type(error).__name__


class quiet_native_stderr:
    """Sends everything written to file descriptor 2 (native code's logging
    as well as Python's) to a temporary file while the block runs, and
    writes it back to stderr if the block raises."""

    def __init__(self, enabled=True):
        self.enabled = enabled

    def __enter__(self):
        if not self.enabled:
            return self
        import tempfile

        sys.stderr.flush()
        self.saved = os.dup(2)
        self.captured = tempfile.TemporaryFile()
        os.dup2(self.captured.fileno(), 2)
        return self

    def __exit__(self, kind, value, traceback):
        if not self.enabled:
            return False
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        if kind is not None:
            self.captured.seek(0)
            os.write(2, self.captured.read())
        self.captured.close()
        return False
