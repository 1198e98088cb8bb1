"""Bad training data is refused before the first step, naming the fix."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.models import tiny_cnn


@pytest.fixture
def distiller():
    d = keras_kd.Distiller(tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student"), losses=[losses.KD()])
    return d.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")


def test_wrong_input_shape(distiller, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match=r"shape \(32, 8, 8\).*student 'student' takes \(None, 8, 8, 1\).*x\[\.\.\., None\]"):
        distiller.fit(x[..., 0], y, verbose=0)


def test_wrong_input_dtype_in_a_dataset(distiller):
    data = tf.data.Dataset.from_tensor_slices((tf.constant(["a", "b"]), tf.constant([0, 1]))).batch(2)
    with pytest.raises(TypeError, match="dtype string.*decode"):
        distiller.fit(data, verbose=0)


def test_labels_out_of_range(distiller, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match=r"\[0, 12\].*10 classes"):
        distiller.fit(x, np.where(y == 9, 12, y), verbose=0)


def test_one_hot_labels_with_a_sparse_loss(distiller, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="one-hot.*argmax"):
        distiller.fit(x, keras.utils.to_categorical(y, 10), verbose=0)


def test_float_sparse_labels_must_be_whole_class_indices(distiller, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="whole numbers"):
        distiller.fit(x, y.astype("float32") + 0.5, verbose=0)
    with pytest.raises(ValueError, match="integer labels"):
        distiller.fit(x, np.where(y == 0, -1, y).astype("float32"), verbose=0)
    distiller.fit(x, y.astype("float32"), verbose=0)  # whole-valued floats train, as in Keras


def test_nan_inputs(distiller, digits_batch):
    x, y = digits_batch
    x = x.copy()
    x[5, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 input sample\(s\) contain NaN or Inf \(first at index 5\)"):
        distiller.fit(x, y, verbose=0)


def test_empty_data(distiller, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="empty"):
        distiller.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="empty"):
        distiller.fit(tf.data.Dataset.from_tensor_slices((x, y)).take(0).batch(4), verbose=0)


def test_inputs_and_labels_of_different_lengths(distiller, digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="32 inputs but 31 labels"):
        distiller.fit(x, y[:31], verbose=0)


def test_one_hot_with_categorical_loss_of_the_wrong_width(digits_batch):
    x, y = digits_batch
    d = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    d.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match=r"\(batch, 10\)"):
        d.fit(x, keras.utils.to_categorical(y, 12), verbose=0)
    d.fit(x, keras.utils.to_categorical(y, 10), verbose=0)  # the right width trains
