"""Process-wide settings: oneDNN kernels asked for before TensorFlow starts,
precision chosen by the machine."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from zoo import runtime, training
from zoo import provenance


def test_onednn_is_asked_for_unless_the_user_chose_or_tensorflow_is_loaded():
    env = {}
    assert runtime.enable_fast_cpu_kernels(env, modules={}) == "1"
    assert env == {runtime.ONEDNN_ENV: "1"}
    env = {runtime.ONEDNN_ENV: "0"}
    assert runtime.enable_fast_cpu_kernels(env, modules={}) == "0"
    env = {}
    assert runtime.enable_fast_cpu_kernels(env, modules={"tensorflow": object()}) is None
    assert env == {}


def _fresh(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != runtime.ONEDNN_ENV}
    environ.update(PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3", **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, cwd=REPO_ROOT, timeout=300)


def test_import_zoo_turns_onednn_on_and_records_it_with_the_hardware():
    proc = _fresh("import zoo, os; from zoo import provenance; "
                  "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], provenance.hardware()['onednn_opts'])")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "1"]
    proc = _fresh("import zoo, os; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])",
                  TF_ENABLE_ONEDNN_OPTS="0")
    assert proc.stdout.split() == ["0"]


def test_precision_follows_the_machine(monkeypatch):
    monkeypatch.setattr(provenance, "native_bfloat16", lambda info=None: False)
    assert provenance.auto_mixed_precision() is False
    resolved = training.TrainConfig(model="resnet-32-cifar10", output_dir="x",
                                    recipe="campaign").resolved()
    assert resolved.mixed_precision is False
    monkeypatch.setattr(provenance, "native_bfloat16", lambda info=None: True)
    assert provenance.auto_mixed_precision() is True
    # An explicit choice wins over the machine.
    assert training.TrainConfig(model="resnet-32-cifar10", output_dir="x", recipe="campaign",
                                mixed_precision=False).resolved().mixed_precision is False


def _tool(name, *args):
    environ = dict(os.environ, PYTHONPATH=REPO_ROOT)
    environ.pop("ZOO_QUIET", None)
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", name), *args],
                          capture_output=True, text=True, env=environ, cwd=REPO_ROOT,
                          timeout=300)


def _native_log_lines(stderr):
    return [line for line in stderr.splitlines() if line[:5] in ("I0000", "W0000", "E0000")]


def test_user_errors_are_one_line_with_status_2_and_tensorflow_starts_quietly(tmp_path):
    proc = _tool("predict.py", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"predict.py: error: No image file or directory at {str(tmp_path / 'missing')!r}."]
    proc = _tool("evaluate.py", "--model", "hamiltonian-74-cifar10", "--dataset",
                 str(tmp_path / "nothing.npz"), "--output_dir", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("evaluate.py: error: No dataset file")
    assert not _native_log_lines(proc.stderr)


def test_a_start_up_failure_still_shows_what_tensorflow_said():
    from zoo import runtime

    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)
    try:
        try:
            with runtime.quiet_native_stderr():
                os.write(2, b"native start-up line\n")
                raise RuntimeError("start-up failed")
        except RuntimeError:
            pass
        with runtime.quiet_native_stderr():
            os.write(2, b"hidden line\n")
        sys.stderr.flush()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write)
    written = os.read(read, 4096).decode()
    os.close(read)
    assert "native start-up line" in written and "hidden line" not in written


def test_a_precision_block_restores_the_callers_policy_also_after_an_error():
    import keras
    import pytest

    from zoo import precision

    before = keras.config.dtype_policy().name
    with precision.policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(RuntimeError):
        with precision.policy("float16"):
            raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == before
