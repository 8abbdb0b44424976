"""Datasets: local files first, clear errors, seeded reproducible pipelines."""


import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shared_data_dir
from zoo import data


def _npz(path, n_train=30, n_test=10, size=8, classes=3, names=True):
    rng = np.random.default_rng(0)
    arrays = dict(
        x_train=rng.integers(0, 256, (n_train, size, size, 3)).astype("uint8"),
        y_train=np.arange(n_train) % classes,
        x_test=rng.integers(0, 256, (n_test, size, size, 3)).astype("uint8"),
        y_test=np.arange(n_test) % classes)
    if names:
        arrays["label_names"] = np.array([f"class{i}" for i in range(classes)])
    np.savez(path, **arrays)
    return arrays


def test_npz_by_path_by_name_and_by_environment(tmp_path, monkeypatch):
    arrays = _npz(tmp_path / "toy.npz")
    by_path = data.load(str(tmp_path / "toy.npz"), "train")
    np.testing.assert_array_equal(by_path.images, arrays["x_train"])
    assert by_path.label_names == ["class0", "class1", "class2"]
    assert by_path.labels.dtype == np.int64 and by_path.num_classes == 3
    by_name = data.load("toy", "test", data_dir=str(tmp_path))
    np.testing.assert_array_equal(by_name.images, arrays["x_test"])
    assert by_name.split == "test" and by_name.source == str(tmp_path / "toy.npz")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert len(data.load("toy", "validation")) == 10  # alias of test


def test_shared_cifar100_part_is_found_by_name():
    part = data.load("cifar100", "train", data_dir=shared_data_dir())
    assert part.source.endswith("cifar100_partial.npz")
    assert part.num_classes == 100 and part.images.shape[1:] == (32, 32, 3)
    assert part.label_names[:2] == ["apple", "aquarium_fish"]


def test_image_folder_with_and_without_split_directories(tmp_path):
    for root in (tmp_path / "flat", tmp_path / "split" / "train"):
        for k, cls in enumerate(("cat", "dog")):
            (root / cls).mkdir(parents=True)
            for i in range(2 + k):
                image = np.full((6, 6, 3), 40 * k + i, np.uint8)
                (root / cls / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    for path in (tmp_path / "flat", tmp_path / "split"):
        split = data.load(str(path), "train")
        assert split.label_names == ["cat", "dog"]
        assert list(split.labels) == [0, 0, 1, 1, 1]
        assert split.images.shape == (5, 6, 6, 3)
    # A flat folder is a training split only; it is never served as the test split.
    with pytest.raises(data.DataNotFoundError, match="no 'test' sub-folder"):
        data.load(str(tmp_path / "flat"), "test")


def test_holdout_is_stratified_and_disjoint(tmp_path):
    _npz(tmp_path / "toy.npz", n_train=300)
    full = data.load(str(tmp_path / "toy.npz"))
    rest, held = data.holdout(full, 0.1, seed=0)
    assert len(rest) == 270 and len(held) == 30 and held.split == "holdout"
    assert np.bincount(held.labels).tolist() == [10, 10, 10]
    seen = {im.tobytes() for im in rest.images}
    assert not any(im.tobytes() in seen for im in held.images)


def test_missing_data_says_what_was_looked_for(tmp_path):
    with pytest.raises(data.DataNotFoundError) as info:
        data.load("no_such_dataset_xyz", "train", data_dir=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "no_such_dataset_xyz.npz") in message
    assert "tensorflow_datasets.load" in message and "--data_dir" in message
    with pytest.raises(data.DataNotFoundError, match="No dataset file"):
        data.load(str(tmp_path / "missing.npz"))


def test_bad_npz_contents_are_reported(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 4, 4, 3), np.uint8), y_train=[0, 1, 2])
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        data.load(str(tmp_path / "bad.npz"))
    with pytest.raises(KeyError, match="x_test"):
        data.load(str(tmp_path / "bad.npz"), "test")


def test_stratified_subset_is_balanced_and_seeded(tmp_path):
    _npz(tmp_path / "toy.npz", n_train=300)
    full = data.load(str(tmp_path / "toy.npz"))
    sub = data.stratified_subset(full, 0.1, seed=1)
    assert np.bincount(sub.labels).tolist() == [10, 10, 10]
    again = data.stratified_subset(full, 0.1, seed=1)
    np.testing.assert_array_equal(sub.images, again.images)
    other = data.stratified_subset(full, 0.1, seed=2)
    assert not np.array_equal(sub.images, other.images)
    assert len(data.stratified_subset(full, 0.001)) == 3  # at least one per class
    with pytest.raises(ValueError):
        data.stratified_subset(full, 1.5)


def test_paper_padding():
    assert data.crop_padding(32) == 4 and data.crop_padding(96) == 12


def test_training_batches_are_a_function_of_seed_and_epoch(tmp_path):
    _npz(tmp_path / "toy.npz", n_train=40, size=16)
    split = data.load(str(tmp_path / "toy.npz"))

    def batches(**kwargs):
        return [x.numpy() for x, _ in data.train_dataset(split, 8, **kwargs)]

    a = batches(seed=1, epoch=0)
    assert len(a) == 5 and a[0].dtype == np.uint8 and a[0].shape == (8, 16, 16, 3)
    np.testing.assert_array_equal(np.stack(a), np.stack(batches(seed=1, epoch=0)))
    assert not np.array_equal(np.stack(a), np.stack(batches(seed=1, epoch=1)))
    assert not np.array_equal(np.stack(a), np.stack(batches(seed=2, epoch=0)))
    # Resuming at batch 3 sees exactly batches 3 and 4 of the full epoch.
    np.testing.assert_array_equal(np.stack(a[3:]), np.stack(batches(seed=1, epoch=0, skip_batches=3)))
    # Without augmentation a batch is the epoch's permutation of the images.
    plain = batches(seed=1, epoch=0, augmentation=False)
    order = data.epoch_order(40, 1, 0)
    np.testing.assert_array_equal(plain[0], split.images[order[:8]])
    # Augmentation is a zero-padded crop, possibly flipped: content is shifted, not altered.
    changed = np.mean([not np.array_equal(x, y) for x, y in zip(a[0], plain[0])])
    assert changed > 0.5
    x, y = a[0][0].astype(int), plain[0][0].astype(int)
    padded = np.pad(y, ((4, 4), (4, 4), (0, 0)))
    windows = [padded[i:i + 16, j:j + 16] for i in range(9) for j in range(9)]
    assert any(np.array_equal(x, w) or np.array_equal(x, w[:, ::-1]) for w in windows)


def test_eval_dataset_keeps_order_and_the_last_partial_batch(tmp_path):
    arrays = _npz(tmp_path / "toy.npz", n_test=10)
    split = data.load(str(tmp_path / "toy.npz"), "test")
    batches = list(data.eval_dataset(split, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), arrays["x_test"])


def test_an_unreadable_image_in_a_folder_is_named_or_skipped_when_asked(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            image = np.full((6, 6, 3), 10 * i, np.uint8)
            (tmp_path / cls / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"dog/broken\.png: cannot decode the image"):
        data.load(str(tmp_path), "train")
    split = data.load(str(tmp_path), "train", skip_unreadable=True)
    assert len(split) == 4 and list(split.labels) == [0, 0, 1, 1]


def test_an_ordinary_folder_of_mixed_images_loads_as_one_rgb_size(tmp_path):
    def png(path, image):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.io.encode_png(image).numpy())

    png(tmp_path / "cat" / "a.png", np.full((8, 8, 3), 10, np.uint8))
    png(tmp_path / "cat" / "b.png", np.full((8, 8, 3), 20, np.uint8))
    png(tmp_path / "cat" / "nested" / "c.png", np.full((16, 12, 3), 30, np.uint8))  # bigger
    png(tmp_path / "dog" / "gray.png", np.full((8, 8, 1), 40, np.uint8))
    png(tmp_path / "dog" / "rgba.png", np.full((8, 8, 4), 50, np.uint8))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / "scan.tif").write_bytes(b"II*\x00")
    split = data.load(str(tmp_path), "train")
    assert split.images.shape == (5, 8, 8, 3) and list(split.labels) == [0, 0, 0, 1, 1]
    np.testing.assert_array_equal(split.images[2], 30)  # resized, values kept
    np.testing.assert_array_equal(split.images[3], 40)  # gray repeated to RGB
    np.testing.assert_array_equal(split.images[4], 50)  # alpha dropped


def test_a_grayscale_folder_stays_grayscale(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "x.png").write_bytes(
            tf.io.encode_png(np.full((6, 6, 1), 7, np.uint8)).numpy())
    assert data.load(str(tmp_path), "train").images.shape == (2, 6, 6, 1)


def test_tensorflow_datasets_can_prepare_a_dataset(tmp_path):
    """The fallback downloads and prepares through the builder, which resolves its
    code path (for the checksums) with importlib_resources, a module
    tensorflow-datasets 4.9.10 uses without declaring; setup.cfg installs it."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("cifar10", data_dir=str(tmp_path))
    assert builder.code_path.exists()


def test_tensorflow_datasets_is_asked_in_the_given_data_dir(tmp_path, monkeypatch):
    import sys
    import types

    asked = {}

    def fake_load(name, **kwargs):
        asked.update(kwargs, name=name)
        raise RuntimeError("not prepared")

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", types.SimpleNamespace(load=fake_load))
    with pytest.raises(data.DataNotFoundError):
        data.load("mnist", "train", data_dir=str(tmp_path))
    assert asked["name"] == "mnist" and asked["data_dir"] == str(tmp_path)
