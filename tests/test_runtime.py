"""Process-wide settings: oneDNN kernels asked for before TensorFlow starts,
precision chosen by the machine."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from zoo import runtime, training


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
    proc = _fresh("import zoo, os; from zoo import training; "
                  "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], training.hardware()['onednn_opts'])")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "1"]
    proc = _fresh("import zoo, os; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])",
                  TF_ENABLE_ONEDNN_OPTS="0")
    assert proc.stdout.split() == ["0"]


def test_precision_follows_the_machine(monkeypatch):
    monkeypatch.setattr(training, "native_bfloat16", lambda info=None: False)
    assert training.auto_mixed_precision() is False
    resolved = training.TrainConfig(model="resnet-32-cifar10", output_dir="x",
                                    recipe="campaign").resolved()
    assert resolved.mixed_precision is False
    monkeypatch.setattr(training, "native_bfloat16", lambda info=None: True)
    assert training.auto_mixed_precision() is True
    # An explicit choice wins over the machine.
    assert training.TrainConfig(model="resnet-32-cifar10", output_dir="x", recipe="campaign",
                                mixed_precision=False).resolved().mixed_precision is False
