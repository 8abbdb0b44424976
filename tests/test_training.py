"""Short real training runs on a few hundred CIFAR-10 images: outputs, falling
loss, resume after a hard kill, NaN handling, and tf.distribute strategies."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.conftest import REPO_ROOT
from zoo import provenance, training
from zoo.training import checkpoints

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def _run_cli(args, timeout=300):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", "train.py"), *args],
                          capture_output=True, text=True, env=_env(), timeout=timeout,
                          cwd=REPO_ROOT)


def _script_command(code, *args):
    return [sys.executable, "-c", textwrap.dedent(code), *map(str, args)]


def _run_script(code, *args, timeout=300):
    return subprocess.run(_script_command(code, *args), capture_output=True, text=True,
                          env=_env(), timeout=timeout, cwd=REPO_ROOT)


def _common_flags(data, output_dir, epochs=2):
    return ["--model", "hamiltonian-74", "--dataset", data, "--output_dir", str(output_dir),
            "--recipe", "cpu", "--mixed_precision=false", "--batch_size", "50",
            "--epochs", str(epochs), "--learning_rate", "0.05", "--checkpoint_every", "3",
            "--seed", "3", "--deterministic", "--progress", "0"]


def _weights(output_dir, name="last.weights.h5"):
    model = zoo.build("hamiltonian-74-cifar10")
    model.load_weights(os.path.join(output_dir, name))
    return [w.numpy() for w in model.weights]


def test_cli_short_run_writes_everything_and_loss_falls(cifar10_small, tmp_path):
    out = tmp_path / "run"
    proc = _run_cli(_common_flags(cifar10_small, out, epochs=3))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test accuracy" in proc.stdout
    for name in ("config.json", "metrics.csv", "metrics.json", "best.weights.h5",
                 "last.weights.h5", "results.json", "curves.png"):
        assert (out / name).exists(), name
    assert (out / "curves.png").read_bytes().startswith(PNG_SIGNATURE)
    assert any(f.startswith("ckpt-") for f in os.listdir(out / "checkpoints"))
    events = [f for _, _, files in os.walk(out / "tensorboard") for f in files]
    assert any("tfevents" in f for f in events)
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert all(0 <= r["val_accuracy"] <= 1 for r in rows)
    # Each epoch's time counts its evaluation of the 100 test images, also given alone.
    assert all(0 < r["validation_seconds"] < r["seconds"] for r in rows), rows
    results = json.loads((out / "results.json").read_text())
    assert results["train_examples"] == 200 and results["test_examples"] == 100
    assert results["steps"] == 12
    assert abs(results["test"]["accuracy"] - rows[-1]["val_accuracy"]) < 1e-6
    assert results["config"]["weight_decay"] == training.RECIPES["cpu"].weight_decay


KILLED_RUN = """
import os, signal, time, keras
from zoo import training
SLEEP = {sleep}

class HardKill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step == 5:  # the first batch of epoch 2, before the checkpoint at step 6
            time.sleep(SLEEP)
        if step == 7:
            os.kill(os.getpid(), signal.SIGKILL)

config = training.TrainConfig(
    model="hamiltonian-74", dataset={data!r}, output_dir={out!r}, recipe="cpu",
    mixed_precision=False, batch_size=50, epochs=2, learning_rate=0.05, checkpoint_every=3,
    seed=3, deterministic=True, verbose=0)
training.train(config, callbacks=[HardKill()])
"""


SLEEP = 3.0


def test_resume_after_hard_kill_equals_uninterrupted_run(cifar10_small, tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    proc = _run_cli(_common_flags(cifar10_small, reference))
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Killed with SIGKILL at step 7 of 8 (mid-epoch 2); the last checkpoint is step 6.
    proc = _run_script(KILLED_RUN.format(data=cifar10_small, out=str(resumed), sleep=SLEEP))
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert not (resumed / "last.weights.h5").exists()

    proc = _run_cli(_common_flags(cifar10_small, resumed))  # the same command again
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from" in proc.stdout and "step 6" in proc.stdout
    for a, b in zip(_weights(reference), _weights(resumed)):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    rows_a = json.loads((reference / "metrics.json").read_text())
    rows_b = json.loads((resumed / "metrics.json").read_text())
    assert [r["epoch"] for r in rows_b] == [1, 2]
    assert abs(rows_a[-1]["val_accuracy"] - rows_b[-1]["val_accuracy"]) < 1e-6
    # Epoch 2's time includes the part run before the kill, and its speed all 4 steps.
    assert rows_b[1]["seconds"] > SLEEP
    assert rows_b[1]["train_images_per_second"] == pytest.approx(
        4 * 50 / rows_b[1]["seconds"], rel=0.01)


def test_resume_refuses_a_different_configuration(cifar10_small, tmp_path):
    out = tmp_path / "run"
    config = training.TrainConfig(model="hamiltonian-74", dataset=cifar10_small,
                                  output_dir=str(out), steps=1, batch_size=50,
                                  mixed_precision=False, verbose=0)
    training.train(config)
    changed = training.TrainConfig(**{**config.__dict__, "seed": 5})
    with pytest.raises(ValueError, match="different configuration.*seed"):
        training.train(changed)


def test_nan_loss_stops_with_a_clear_message(cifar10_small, tmp_path):
    flags = _common_flags(cifar10_small, tmp_path / "nan", epochs=1)
    flags[flags.index("--learning_rate") + 1] = "1e30"
    proc = _run_cli(flags)
    assert proc.returncode == 1
    assert "training loss became nan" in proc.stderr.lower()


def test_schedules():
    step = training.StepDecay(0.1, [10, 20])
    assert [round(float(step(s)), 6) for s in (0, 9, 10, 19, 20, 100)] == [
        0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    cosine = training.WarmupCosine(0.2, total_steps=110, warmup_steps=10)
    assert float(cosine(0)) == pytest.approx(0.02)
    assert float(cosine(9)) == pytest.approx(0.2)
    assert float(cosine(60)) == pytest.approx(0.1)
    assert float(cosine(110)) == pytest.approx(0.0, abs=1e-7)
    for schedule in (step, cosine):
        clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
        assert clone.get_config() == schedule.get_config()


def test_paper_recipe_is_the_papers():
    paper = training.RECIPES["paper"]
    assert (paper.batch_size, paper.learning_rate, paper.momentum, paper.steps) == (100, 0.1, 0.9, 80_000)
    assert tuple(paper.decay_epochs) == (80, 120, 160)
    assert (paper.weight_decay, paper.smoothness_decay) == (2e-4, 2e-4)
    stl = training.RECIPES["paper-stl10"]
    assert (stl.batch_size, stl.steps, tuple(stl.decay_epochs)) == (128, 20_000, (60, 80, 100))
    assert (stl.weight_decay, stl.smoothness_decay) == (5e-4, 3e-4)


STRATEGY_RUN = """
import json, sys
import tensorflow as tf
devices = int(sys.argv[1])
if devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
from zoo import training
config = training.TrainConfig(
    model="hamiltonian-74", dataset={data!r}, output_dir=sys.argv[3], recipe="cpu",
    mixed_precision=False, batch_size=50, steps=4, learning_rate=0.05, seed=3,
    strategy=sys.argv[2], verbose=0)
results = training.train(config)
print("REPLICAS", results["replicas"])
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_strategies_match_single_device_training(cifar10_small, tmp_path):
    """Mirrored over two logical CPU devices and multi-worker over two local
    processes give the weights of single-device training (global batch 50)."""
    script = STRATEGY_RUN.format(data=cifar10_small)
    single = _run_script(script, 1, "default", tmp_path / "single")
    assert single.returncode == 0, single.stderr[-3000:]
    mirrored = _run_script(script, 2, "mirrored", tmp_path / "mirrored")
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    assert "REPLICAS 2" in mirrored.stdout

    ports = [_free_port(), _free_port()]
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                "task": {"type": "worker", "index": index}})
        workers.append(subprocess.Popen(
            _script_command(script, 1, "multi_worker", tmp_path / "multi"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(TF_CONFIG=tf_config), cwd=REPO_ROOT))
    outputs = [w.communicate(timeout=300) for w in workers]
    for w, (stdout, stderr) in zip(workers, outputs):
        assert w.returncode == 0, stderr[-3000:]
        assert "REPLICAS 2" in stdout

    reference = _weights(tmp_path / "single")
    for name in ("mirrored", "multi"):
        for a, b in zip(reference, _weights(tmp_path / name)):
            # Float32 sums in another order, over 4 steps: up to 2.3e-5 apart
            # (a kernel of norm 16.7) since the blocks start from independent
            # kernels; a wrong replica scaling would move them by a part of
            # the updates themselves.
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=5e-5, err_msg=name)


def test_image_folder_without_test_split_validates_on_a_holdout(tmp_path, capsys):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(20):
            image = rng.integers(0, 256, (32, 32, 3)).astype("uint8")
            (tmp_path / "images" / cls / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    results = training.train(training.TrainConfig(
        model="hamiltonian-74", dataset=str(tmp_path / "images"), output_dir=str(tmp_path / "run"),
        steps=2, batch_size=8, mixed_precision=False, verbose=0))
    assert "no test split" in capsys.readouterr().out
    assert results["train_examples"] == 36 and results["test_examples"] == 4
    assert results["parameters"] == zoo.build("hamiltonian-74", classes=2).count_params()


def test_train_restores_the_callers_dtype_policy(cifar10_small, tmp_path):
    keras.config.set_dtype_policy("float32")
    training.train(training.TrainConfig(
        model="hamiltonian-74", dataset=cifar10_small, output_dir=str(tmp_path / "run"),
        steps=1, batch_size=50, mixed_precision=True, limit_eval=50, verbose=0))
    assert keras.config.dtype_policy().name == "float32"


def test_cpu_features_and_the_bfloat16_warning(tmp_path, monkeypatch):
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n")
    amx = tmp_path / "amx"
    amx.write_text("model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: avx2 avx512f amx_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    info = provenance.cpu_info(str(avx2))
    assert info == {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "fma", "fpu", "sse2"]}
    assert provenance.native_bfloat16(info) is False
    assert provenance.native_bfloat16(provenance.cpu_info(str(amx))) is True
    assert provenance.native_bfloat16(provenance.cpu_info(str(arm))) is True
    assert provenance.native_bfloat16(provenance.cpu_info(str(tmp_path / "missing"))) is None

    read = provenance.cpu_info
    monkeypatch.setattr(provenance, "cpu_info", lambda path=None: read(str(avx2)))
    with pytest.warns(RuntimeWarning, match="--nomixed_precision"):
        assert provenance.warn_if_bfloat16_is_emulated(True)
    assert not provenance.warn_if_bfloat16_is_emulated(False)
    monkeypatch.setattr(provenance, "cpu_info", lambda path=None: read(str(amx)))
    assert not provenance.warn_if_bfloat16_is_emulated(True)


def test_a_snapshot_of_a_run_resumes_elsewhere(cifar10_small, tmp_path):
    config = training.TrainConfig(model="hamiltonian-74", dataset=cifar10_small,
                                  output_dir=str(tmp_path / "run"), steps=2, batch_size=50,
                                  checkpoint_every=1, mixed_precision=False, verbose=0)
    first = training.train(config)
    saved = training.snapshot_run(config.output_dir, str(tmp_path / "snapshot"))
    assert sorted(os.listdir(tmp_path / "snapshot")) == [
        "checkpoints", "config.json", "metrics.csv", "metrics.json"]
    assert not any(n.endswith(".weights.h5") for n in os.listdir(tmp_path / "snapshot"))
    moved = tmp_path / "elsewhere"
    os.rename(tmp_path / "snapshot", moved)
    again = training.train(training.TrainConfig(**{**config.__dict__, "output_dir": str(moved)}))
    assert again["resumed_from"] == str(moved / "checkpoints" / os.path.basename(saved))
    assert again["test"]["accuracy"] == first["test"]["accuracy"]
    with pytest.raises(FileNotFoundError, match="no resumable checkpoint"):
        training.snapshot_run(str(tmp_path / "nothing"), str(tmp_path / "x"))


def test_checkpoints_from_before_the_epoch_time_are_recognised(tmp_path):
    # train() resumes such a checkpoint without the `seconds` entry it lacks.
    old = tf.train.Checkpoint(epoch=tf.Variable(1), batch=tf.Variable(2)).save(
        str(tmp_path / "old" / "ckpt"))
    new = tf.train.Checkpoint(epoch=tf.Variable(1), seconds=tf.Variable(3.0)).save(
        str(tmp_path / "new" / "ckpt"))
    assert not checkpoints.has_checkpoint_entry(old, "seconds")
    assert checkpoints.has_checkpoint_entry(new, "seconds")


def test_model_args_reach_the_builder_and_the_record(cifar10_small, tmp_path):
    out = tmp_path / "run"
    model_args = {"widths": [8, 16, 16, 16], "h": 0.5}
    seen = {}

    class Inspect(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["params"] = self.model.count_params()

    config = training.TrainConfig(
        model="parabolic", dataset=cifar10_small, output_dir=str(out), steps=1, batch_size=50,
        mixed_precision=False, control_points=2, model_args=model_args, verbose=0)
    training.train(config, callbacks=[Inspect()])
    expected = zoo.build("parabolic-cifar10", control_points=2, **model_args)
    assert seen["params"] == expected.count_params()
    saved = json.loads((out / "results.json").read_text())["config"]
    assert saved["model_args"] == model_args
    assert training.architecture_args(saved) == {**model_args, "control_points": 2}
    assert training.architecture_args(config) == {**model_args, "control_points": 2}
    # Resuming with other model_args is another run.
    with pytest.raises(ValueError, match="different configuration.*model_args"):
        training.train(training.TrainConfig(**{**config.__dict__, "model_args": {"h": 1.0}}))


@pytest.mark.parametrize("model_args, message", [
    ({"classes": 3}, "may not set \\['classes'\\]"),
    ({"control_points": 2}, "own fields"),
    ([("h", 1.0)], "must be a dict"),
    ({"h": object()}, "JSON values"),
])
def test_bad_model_args_are_refused(model_args, message):
    config = training.TrainConfig(model="parabolic-cifar10", output_dir="unused",
                                  model_args=model_args)
    with pytest.raises(ValueError, match=message):
        config.resolved()


def test_cli_refuses_model_args_that_are_not_json(tmp_path):
    proc = _run_cli(["--model", "parabolic-cifar10", "--output_dir", str(tmp_path / "run"),
                     "--model_args", "{h: 1}"])
    assert proc.returncode == 2
    assert "--model_args is not JSON" in proc.stderr


def test_schedule_epochs_trains_the_start_of_a_longer_schedule(cifar10_small, tmp_path):
    # 200 images at batch 50: 4 steps an epoch. Two epochs of a 10-epoch
    # cosine schedule end near its peak rate, not at 0.
    seen = {}

    class Rate(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            optimizer = self.model.optimizer
            seen["rate"] = float(optimizer.learning_rate)
            seen["schedule"] = optimizer._learning_rate.get_config()

    training.train(training.TrainConfig(
        model="hamiltonian-74", dataset=cifar10_small, output_dir=str(tmp_path / "run"),
        recipe="campaign", epochs=2, schedule_epochs=10, batch_size=50, learning_rate=0.1,
        mixed_precision=False, limit_eval=50, verbose=0), callbacks=[Rate()])
    assert seen["schedule"]["total_steps"] == 40 and seen["schedule"]["warmup_steps"] == 4
    expected = training.WarmupCosine(0.1, total_steps=40, warmup_steps=4)(8)
    assert seen["rate"] == pytest.approx(float(expected)) and seen["rate"] > 0.09
    with pytest.raises(ValueError, match="schedule_epochs must be positive"):
        training.TrainConfig(model="hamiltonian-74-cifar10", output_dir="unused",
                             schedule_epochs=0).resolved()
