"""Where a figure was measured: the code's commit, the CPU and its features,
the devices and library versions; and the precision this machine runs fast
(bfloat16 only where it is native)."""

import os
import platform
import subprocess
import warnings

import keras
import tensorflow as tf

from zoo.runtime import ONEDNN_ENV


def git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else None
        return f"{commit}-dirty" if commit and dirty.stdout.strip() else commit
    except (OSError, subprocess.SubprocessError):
        return None


# CPU features that execute bfloat16 arithmetic natively (x86: AVX512-BF16,
# AMX; aarch64: the BF16 extension). Without one, oneDNN emulates it.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_info(path="/proc/cpuinfo"):
    """The CPU's model name and feature flags, from /proc/cpuinfo (empty
    where there is none)."""
    model, flags = None, set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "cpu_flags": sorted(flags)}


def native_bfloat16(info=None):
    """Whether this CPU computes in bfloat16 natively, or None if unknown."""
    info = cpu_info() if info is None else info
    if not info["cpu_flags"]:
        return None
    return any(flag in info["cpu_flags"] for flag in NATIVE_BFLOAT16_FLAGS)


def hardware():
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    info = cpu_info()
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "cpu_model": info["cpu_model"],
            "cpu_native_bfloat16": native_bfloat16(info), "devices": devices,
            "onednn_opts": os.environ.get(ONEDNN_ENV),
            "tensorflow": tf.__version__, "keras": keras.__version__}


def warn_if_bfloat16_is_emulated(mixed_precision):
    """Warns when mixed_bfloat16 would run on a CPU without native bfloat16:
    there it is several times slower than float32, not faster (Hamiltonian-74,
    batch 100, on a 2-core AVX2-only AMD EPYC VM: 5 img/s against 43 img/s)."""
    if not mixed_precision or tf.config.list_physical_devices("GPU"):
        return False
    if native_bfloat16() is not False:
        return False
    warnings.warn(
        "mixed_bfloat16 on a CPU without native bfloat16 (none of "
        f"{', '.join(NATIVE_BFLOAT16_FLAGS)}): it is emulated and several times slower "
        "than float32 here. Pass --nomixed_precision (mixed_precision=False) to train in float32.",
        RuntimeWarning, stacklevel=3)
    return True


def auto_mixed_precision():
    """Whether this machine should train in mixed_bfloat16: on a GPU, or on a
    CPU with native bfloat16. Elsewhere bfloat16 is emulated and several
    times slower than float32 (Hamiltonian-74: 5-8 img/s against 43 on an
    AVX2-only AMD EPYC)."""
    if tf.config.list_physical_devices("GPU"):
        return True
    return bool(native_bfloat16())
