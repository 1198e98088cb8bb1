"""Datasets: embedded digits, local IDX copies, TFDS names."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import tensorflow as tf

from keras_kd import datasets


def test_digits_is_embedded_split_and_deterministic():
    x_train, y_train = datasets.load("digits", "train", as_numpy=True)
    x_test, y_test = datasets.load("digits", "test", as_numpy=True)
    assert x_train.shape == (1438, 8, 8, 1) and x_test.shape == (359, 8, 8, 1)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() == 1.0
    assert sorted(np.unique(y_test)) == list(range(10))
    x_all, _ = datasets.load("digits", "all", as_numpy=True)
    assert len(x_all) == 1797
    # Disjoint splits: no test image appears in train.
    train_rows = {row.tobytes() for row, label in zip(x_train, y_train)}
    overlap = sum(row.tobytes() in train_rows for row in x_test)
    assert overlap <= 3  # the source has a few exact duplicate images
    again, _ = datasets.load("digits", "test", as_numpy=True)
    np.testing.assert_array_equal(again, x_test)


def test_digits_pipeline_batches():
    dataset = datasets.load("digits", "train", batch_size=64, shuffle=True, seed=1)
    x, y = next(iter(dataset))
    assert x.shape == (64, 8, 8, 1) and y.dtype == tf.int32


def test_unknown_digits_split():
    with pytest.raises(ValueError, match="Unknown split"):
        datasets.load("digits", "validation")


def _write_idx(path, array):
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_local_idx_copy_is_found_in_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = np.arange(5)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    x, y = datasets.load("fashion_mnist", "test", as_numpy=True, data_dir=str(tmp_path))
    assert x.shape == (5, 28, 28, 1)
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_tfds_names_load_through_tensorflow_datasets(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    # No local CIFAR copy may shadow TFDS here (Keras's cache lives in HOME).
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)

    with tfds.testing.mock_data(num_examples=12):
        x, y = datasets.load("cifar10", "train", as_numpy=True)
        dataset = datasets.load("cifar10", "train", batch_size=4)
        batch_x, _ = next(iter(dataset))
    assert x.shape == (12, 32, 32, 3) and x.dtype == np.float32 and x.max() <= 1.0
    assert y.shape == (12,)
    assert batch_x.shape == (4, 32, 32, 3)


def test_missing_dataset_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        datasets.load("no_such_dataset_kd", "train", data_dir=str(tmp_path))
    assert "'digits'" in str(error.value)


# --- CIFAR: the python-pickle batches of the original archives -------------


def _cifar_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def _write_cifar_batch(path, images, labels, label_key):
    """A batch in the exact format of cifar-10-batches-py / cifar-100-python:
    a protocol-2 pickle of a dict with bytes keys, b"data" uint8 (N, 3072)
    channel-major (R plane, G plane, B plane, each row-major) and a list of
    labels."""
    batch = {
        b"batch_label": b"fake batch",
        b"data": images.transpose(0, 3, 1, 2).reshape(len(images), 3072),
        label_key: [int(v) for v in labels],
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [int(v) // 5 for v in labels]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def _fake_cifar10(folder):
    train = [(_cifar_images(2, i), np.array([i, 9 - i])) for i in range(5)]
    for i, (x, y) in enumerate(train, start=1):
        _write_cifar_batch(os.path.join(folder, f"data_batch_{i}"), x, y, b"labels")
    test = (_cifar_images(3, 10), np.array([3, 1, 4]))
    _write_cifar_batch(os.path.join(folder, "test_batch"), *test, b"labels")
    return train, test


def _fake_cifar100(folder):
    train = (_cifar_images(4, 20), np.array([0, 99, 50, 7]))
    test = (_cifar_images(2, 21), np.array([42, 98]))
    _write_cifar_batch(os.path.join(folder, "train"), *train, b"fine_labels")
    _write_cifar_batch(os.path.join(folder, "test"), *test, b"fine_labels")
    return train, test


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    return home


def test_cifar10_from_data_dir(tmp_path, empty_home):
    train, test = _fake_cifar10(str(tmp_path / "data" / "cifar-10-batches-py"))
    x, y = datasets.load("cifar10", "train", as_numpy=True, data_dir=str(tmp_path / "data"))
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.float32
    assert y.dtype == np.int32 and y.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    expected = np.concatenate([images for images, _ in train]) / 255.0
    np.testing.assert_allclose(x, expected, rtol=1e-6)  # NHWC, channels right
    x_test, y_test = datasets.load("cifar10", "test", as_numpy=True,
                                   data_dir=str(tmp_path / "data" / "cifar-10-batches-py"))
    np.testing.assert_allclose(x_test, test[0] / 255.0, rtol=1e-6)
    assert y_test.tolist() == [3, 1, 4]
    batch_x, batch_y = next(iter(datasets.load(
        "cifar10", "test", batch_size=2, data_dir=str(tmp_path / "data"))))
    assert batch_x.shape == (2, 32, 32, 3) and batch_y.dtype == tf.int32


def test_cifar100_from_the_keras_cache_in_home(empty_home):
    train, test = _fake_cifar100(str(empty_home / ".keras" / "datasets" / "cifar-100-python"))
    x, y = datasets.load("cifar100", "train", as_numpy=True)
    np.testing.assert_allclose(x, train[0] / 255.0, rtol=1e-6)
    assert y.dtype == np.int32 and y.tolist() == [0, 99, 50, 7]  # fine labels
    assert x.min() >= 0.0 and x.max() <= 1.0
    _, y_test = datasets.load("cifar100", "test", as_numpy=True)
    assert y_test.tolist() == [42, 98]
    assert datasets.info("cifar100") == {"input_shape": (32, 32, 3), "num_classes": 100}
    assert datasets.info("cifar10")["num_classes"] == 10


def test_cifar10_from_the_keras3_cache_layout(empty_home, monkeypatch, tmp_path):
    # keras.datasets.cifar10.load_data() in Keras 3 extracts to
    # $KERAS_HOME/datasets/cifar-10-batches-py-target/cifar-10-batches-py.
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    _, test = _fake_cifar10(str(
        keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"))
    _, y = datasets.load("cifar10", "test", as_numpy=True)
    assert y.tolist() == test[1].tolist()


def test_cifar_not_found_lists_every_place(tmp_path, empty_home, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(*args, **kwargs):
        raise ConnectionError("no internet")

    monkeypatch.setattr(tfds, "load", offline)
    data_dir = str(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError) as error:
        datasets.load("cifar100", "train", data_dir=data_dir)
    message = str(error.value)
    keras_datasets = os.path.join(str(empty_home), ".keras", "datasets")
    for place in [
        data_dir,
        os.path.join(data_dir, "cifar-100-python"),
        os.path.join(keras_datasets, "cifar-100-python"),
        os.path.join(keras_datasets, "cifar-100-python-target", "cifar-100-python"),
    ]:
        assert f"- {place}\n" in message, (place, message)
    assert "ConnectionError: no internet" in message


def test_cifar_pickles_cannot_run_code(tmp_path, empty_home):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split in ("train", "test"):
        with open(folder / split, "wb") as handle:
            pickle.dump({b"data": os.getcwd, b"fine_labels": []}, handle, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="Refusing to load .*getcwd"):
        datasets.load("cifar100", "test", as_numpy=True, data_dir=str(tmp_path))


# --- Real data: the Debian package dataset-fashion-mnist (installed by .ci/run)


def test_real_fashion_mnist_from_the_debian_package(fashion_mnist):
    # Skipped without the data, except in CI (KERAS_KD_REQUIRE_REAL_DATA=1).
    for split, count in (("train", 60000), ("test", 10000)):
        x, y = datasets.load("fashion_mnist", split, as_numpy=True)
        assert x.shape == (count, 28, 28, 1) and x.dtype == np.float32
        assert y.shape == (count,) and y.dtype == np.int32
        assert 0.0 == x.min() and x.max() == 1.0
        # Fashion-MNIST is exactly balanced over its 10 classes.
        assert np.bincount(y, minlength=10).tolist() == [count // 10] * 10
