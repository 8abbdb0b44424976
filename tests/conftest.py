import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests read the CPU allocator's peak statistics, which TensorFlow keeps only
# with this allocator, chosen before it starts (zoo.research.analysis.ALLOCATOR_STATS_ENV).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shared_data_dir():
    """Where the offline datasets live: $ZOO_DATA_DIR or ../shared/data."""
    first = os.environ.get("ZOO_DATA_DIR", "").split(os.pathsep)[0]
    return first or os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")


@pytest.fixture(scope="session")
def cifar10_small(tmp_path_factory):
    """A .npz with the first 200 training and 100 test images of CIFAR-10,
    cut from the real file once per session (loading the full file is slow)."""
    import numpy as np

    source = os.path.join(shared_data_dir(), "cifar10.npz")
    assert os.path.exists(source), (
        f"The tests need CIFAR-10 at {source}; set ZOO_DATA_DIR to the directory holding cifar10.npz.")
    with np.load(source) as full:
        path = tmp_path_factory.mktemp("data") / "cifar10_small.npz"
        np.savez(path, x_train=full["x_train"][:200], y_train=full["y_train"][:200],
                 x_test=full["x_test"][:100], y_test=full["y_test"][:100],
                 label_names=full["label_names"])
    return str(path)
