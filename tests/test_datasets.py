"""Datasets: embedded digits, local IDX copies, TFDS names."""

import gzip
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


def test_tfds_names_load_through_tensorflow_datasets():
    import tensorflow_datasets as tfds

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
