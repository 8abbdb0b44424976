"""The `zoo` command line (zoo.cli), its tools/ wrappers, and
zoo.predict_images, which `zoo predict` calls."""

import ast
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import zoo
from tests.conftest import REPO_ROOT
from tests.helpers import training_run_directory
from zoo import cli, inference

NAME = "hamiltonian-74-cifar10"
SAMPLES = os.path.join(REPO_ROOT, "tools", "samples")


def _zoo(*args, timeout=300):
    """`python -m zoo ...`, as the console script runs it, with the user's
    environment (no ZOO_QUIET set)."""
    environ = dict(os.environ, PYTHONPATH=REPO_ROOT)
    environ.pop("ZOO_QUIET", None)
    return subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True,
                          text=True, env=environ, cwd=REPO_ROOT, timeout=timeout)


def _tool(name, *args, timeout=300):
    environ = dict(os.environ, PYTHONPATH=REPO_ROOT)
    environ.pop("ZOO_QUIET", None)
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", name),
                           *map(str, args)], capture_output=True, text=True, env=environ,
                          cwd=REPO_ROOT, timeout=timeout)


def _native_log_lines(stderr):
    return [line for line in stderr.splitlines() if line[:5] in ("I0000", "W0000", "E0000")]


def test_zoo_lists_its_commands_and_rejects_unknown_ones():
    proc = _zoo("--help")
    assert proc.returncode == 0
    for command in ("predict", "evaluate", "train", "finetune", "export", "list", "info"):
        assert re.search(rf"^  {command} ", proc.stdout, re.M), command
    assert not _native_log_lines(proc.stderr)
    proc = _zoo()
    assert proc.returncode == 2 and "usage: zoo <command>" in proc.stderr
    proc = _zoo("predcit")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"zoo: error: unknown command 'predcit'; the commands are {', '.join(cli.COMMANDS)} "
        "(zoo --help)"]


def test_pip_install_puts_the_zoo_command_beside_python():
    # `pip install .` (the README's commands) writes the console script here.
    script = os.path.join(os.path.dirname(sys.executable), "zoo")
    assert os.path.isfile(script), f"{script} missing: install the package (pip install .)"
    environ = {k: v for k, v in os.environ.items() if k != "ZOO_QUIET"}
    proc = subprocess.run([script, "list", "--pretrained", "--json"], capture_output=True,
                          text=True, env=environ, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [row["name"] for row in json.loads(proc.stdout)] == zoo.list_models(pretrained=True)
    # TensorFlow's start-up messages are hidden without --verbose.
    assert not _native_log_lines(proc.stderr), proc.stderr


# Renders every command's --help in one process (each subprocess starts
# TensorFlow anew); the flags of one command are removed before the next.
HELP_SCRIPT = """
import json, sys
from absl import flags
from zoo import cli
texts = {}
for command in cli.COMMANDS:
    module = __import__(f"zoo.cli.{command}", fromlist=["define_flags"])
    module.define_flags()
    texts[command] = cli.command_usage(command, f"zoo {command}")
    for name in list(flags.FLAGS):
        if flags.FLAGS.find_module_defining_flag(name) == module.__name__:
            delattr(flags.FLAGS, name)
print(json.dumps(texts))
"""


def test_every_command_has_help_with_runnable_examples():
    proc = subprocess.run([sys.executable, "-c", HELP_SCRIPT], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO_ROOT, ZOO_QUIET="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    texts = json.loads(proc.stdout)
    assert sorted(texts) == sorted(cli.COMMANDS)
    for command, text in texts.items():
        examples = [line.strip() for line in text.splitlines()
                    if line.startswith(f"    zoo {command}")]
        assert examples, command
        for line in examples:
            assert "  " not in line, f"a run of spaces in {line!r}"
            assert "{prog}" not in line
        assert "flags:" in text and "verbose: Show TensorFlow" in text, command
    # The real path: `--help` of one command and of one tool.
    proc = _zoo("predict", "--help")
    assert proc.returncode == 0 and proc.stdout == texts["predict"]
    proc = _tool("train.py", "--help")
    assert proc.returncode == 0
    assert proc.stdout == texts["train"].replace("zoo train", "python tools/train.py")


@pytest.mark.parametrize("command", ["predict", "evaluate", "train", "finetune", "export"])
def test_the_tools_are_thin_wrappers_of_the_commands(command):
    path = os.path.join(REPO_ROOT, "tools", f"{command}.py")
    tree = ast.parse(open(path).read())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "attr", None) == "run"
             and getattr(node.func.value, "id", None) == "cli"]
    assert len(calls) == 1 and calls[0].args[0].value == command
    # No flags, no functions: everything is in zoo.cli.<command>.
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert "DEFINE_" not in open(path).read()


def test_list_and_info_give_what_the_library_gives():
    proc = _zoo("list")
    assert proc.returncode == 0
    assert [line.split()[0] for line in proc.stdout.splitlines()] == zoo.list_models()
    proc = _zoo("info", NAME, "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == zoo.info(NAME)
    proc = _zoo("info", NAME)
    assert f"top-1 {100 * zoo.info(NAME)['metrics']['top1']:.2f}%" in proc.stdout
    proc = _zoo("info", "hamiltonian-74-cifar1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("zoo info: error: Unknown model 'hamiltonian-74-cifar1'. "
                                  "Did you mean 'hamiltonian-74-cifar10'")


def test_predict_and_the_tool_print_the_same():
    by_command = _zoo("predict", "--model", NAME, "--top", "2", SAMPLES)
    by_tool = _tool("predict.py", "--model", NAME, "--top", "2", SAMPLES)
    assert by_command.returncode == by_tool.returncode == 0, by_command.stderr[-2000:]
    assert by_command.stdout == by_tool.stdout and len(by_command.stdout.splitlines()) == 10
    # The name.tag form names the same checkpoint.
    architecture, dataset = zoo.registry.split_name(NAME)
    tagged = _zoo("predict", "--model", f"{architecture.name}.{dataset}", "--top", "2", SAMPLES)
    assert tagged.returncode == 0 and tagged.stdout == by_command.stdout
    info = _zoo("info", f"{architecture.name}.{dataset}", "--json")
    assert info.returncode == 0 and json.loads(info.stdout) == zoo.info(NAME)


def test_a_bad_flag_or_a_leftover_number_is_one_line_with_status_2(tmp_path):
    proc = _zoo("evaluate", "--model", NAME, "--limt", "10")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "zoo evaluate: error: Unknown command line flag 'limt'. Did you mean: limit ? "
        "(see zoo evaluate --help)"]
    # --verbose N was Keras' verbosity before --progress.
    proc = _tool("train.py", "--model", "resnet-32-cifar10", "--output_dir", tmp_path / "run",
                 "--verbose", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "train.py: error: Unexpected arguments: 0 (--verbose is a switch; Keras' progress "
        "output is --progress 0, 1 or 2) (see train.py --help)")
    assert not os.path.exists(tmp_path / "run")
    # train reads --model_args as predict and evaluate do: a JSON object.
    proc = _zoo("train", "--model", "resnet-32-cifar10", "--output_dir", tmp_path / "run",
                "--model_args", "[0.3]")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "zoo train: error: --model_args must be a JSON object, got '[0.3]'."]
    assert not os.path.exists(tmp_path / "run")


def test_train_on_missing_or_unreadable_data_leaves_no_output_directory(tmp_path):
    proc = _zoo("train", "--model", "resnet-32-cifar10", "--dataset", tmp_path / "none.npz",
                "--output_dir", tmp_path / "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"zoo train: error: No dataset file or folder at '{tmp_path / 'none.npz'}'."]
    assert not os.path.exists(tmp_path / "run")
    # An image folder with an unreadable file: named, and nothing written.
    folder = tmp_path / "images"
    for label in ("cats", "dogs"):
        (folder / "train" / label).mkdir(parents=True)
        for i in range(2):
            inference_png = open(os.path.join(SAMPLES, sorted(os.listdir(SAMPLES))[i]), "rb")
            (folder / "train" / label / f"{i}.png").write_bytes(inference_png.read())
    (folder / "train" / "dogs" / "broken.png").write_bytes(b"not an image")
    proc = _zoo("train", "--model", "resnet-32", "--dataset", folder, "--output_dir",
                tmp_path / "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"zoo train: error: {folder / 'train' / 'dogs' / 'broken.png'}: "
                           "cannot decode the image"), last
    assert last.endswith("(remove it, or skip unreadable images: --skip_unreadable, "
                         "skip_unreadable=True)")
    assert not os.path.exists(tmp_path / "run")


def test_export_refuses_an_existing_version_and_an_unknown_name(tmp_path):
    version = tmp_path / NAME / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"kept")
    proc = _zoo("export", "--model", NAME, "--export_dir", tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"zoo export: error: {version} exists; choose another version, or replace it "
        "(--overwrite, overwrite=True)."]
    assert (version / "saved_model.pb").read_bytes() == b"kept"
    proc = _zoo("export", "--model", "hamiltonian-74-cifar100", "--export_dir", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("zoo export: error: No pretrained weights for "
                                  "'hamiltonian-74-cifar100'.")


# zoo.predict_images
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return zoo.load(NAME)


def _sample_files():
    return inference.image_paths([SAMPLES])


def test_predict_images_takes_one_image_without_a_batch_axis(model):
    images = inference.load_images(_sample_files()[:3], (32, 32))
    expected = model.predict(images, verbose=0)
    labels = zoo.info(NAME)["labels"]
    result = zoo.predict_images(model, images[0], label_names=labels)
    assert result.probabilities.shape == (1, 10) and result.sources == [0]
    np.testing.assert_allclose(result.probabilities[0], expected[0], atol=1e-6)
    assert result.labels == [labels[int(np.argmax(expected[0]))]]
    # A batch, a list of paths and arrays, and a folder give the same numbers.
    result = zoo.predict_images(model, [images, _sample_files()[1]], label_names=labels)
    np.testing.assert_allclose(result.probabilities, np.concatenate([expected, expected[1:2]]),
                               atol=1e-6)
    assert result.sources == [(0, 0), (0, 1), (0, 2), _sample_files()[1]]
    assert len(zoo.predict_images(model, SAMPLES).labels) == len(_sample_files())


def test_predict_images_converts_gray_alpha_and_size_and_rejects_other_shapes(model):
    rgb = inference.load_images(_sample_files()[:1], (32, 32))[0]
    gray = rgb.mean(axis=-1, keepdims=True).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((32, 32, 1), 255, np.uint8)], axis=-1)
    large = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)  # 64×64
    result = zoo.predict_images(model, [gray, rgba, large])
    np.testing.assert_allclose(result.probabilities[1], zoo.predict_images(model, rgb)
                               .probabilities[0], atol=1e-6)
    np.testing.assert_allclose(result.probabilities[0], model.predict(
        np.repeat(gray, 3, axis=-1)[None], verbose=0)[0], atol=1e-6)
    assert result.labels[2] == result.labels[1]  # upsampled by 2 and back: the same image
    with pytest.raises(ValueError, match=r"shape \(height, width, channels\) or \(batch, "
                                         r"height, width, channels\).*got shape \(32, 32\)"):
        zoo.predict_images(model, rgb[..., 0])
    with pytest.raises(ValueError, match="3 label names for a model with 10 classes"):
        zoo.predict_images(model, rgb, label_names=["a", "b", "c"])


def test_predict_images_reports_unreadable_files_and_goes_on(model, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    result = zoo.predict_images(model, [_sample_files()[0], str(tmp_path / "empty.png")])
    assert result.sources == [_sample_files()[0]] and len(result.labels) == 1
    assert [path for path, _ in result.failures] == [str(tmp_path / "empty.png")]


def test_every_row_of_the_readmes_bad_input_table_names_tests_that_exist():
    readme = open(os.path.join(REPO_ROOT, "README.md")).read()
    section = readme.split("### What bad input gives", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert len(rows) >= 15
    for row in rows:
        tests = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", row.rsplit(" | ", 1)[1])
        assert tests, row
        for path, name in tests:
            tree = ast.parse(open(os.path.join(REPO_ROOT, path)).read())
            assert name in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, (
                f"{path}::{name} named in the README does not exist")


def test_kernel_smoothness_reports_the_shipped_kernels(tmp_path, cifar10_small):
    out = tmp_path / "report.json"
    proc = _tool("kernel_smoothness.py", "--model", "resnet-32-cifar10", "--images", 16,
                 "--dataset", cifar10_small, "--weight_decay", 5e-4, "--smoothness_decay", 2e-4,
                 "--json", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["images"] == 16 and len(report["kernel_drift"]) == 6
    assert all(0 < d["min"] <= d["mean"] <= d["max"] for d in report["kernel_drift"].values())
    assert all(v > 0 for v in report["gradient_norms"].values())
    assert "stage1/conv1: ||K_j+1 - K_j|| / ||K_j||" in proc.stdout
    assert _tool("kernel_smoothness.py", "--model", "resnet-33-cifar10").returncode != 0


def test_kernel_smoothness_builds_a_runs_weights_as_the_run_recorded(tmp_path, cifar10_small):
    # Weights trained at h = 0.3 load into the default h = 0.1 network too;
    # the gradient norms are only those of the trained network when the
    # run's config.json decides.
    weights = training_run_directory(tmp_path, zoo.build("hamiltonian-74-cifar10", h=0.3),
                                     "hamiltonian-74", {"h": 0.3})
    out = tmp_path / "report.json"
    proc = _tool("kernel_smoothness.py", "--model", "hamiltonian-74-cifar10", "--images", 8,
                 "--dataset", cifar10_small, "--weights", weights, "--json", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out.read_text())["model_args"] == {"h": 0.3}
    assert "built with: h=0.3" in proc.stdout
