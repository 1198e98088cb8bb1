"""The data passed to fit, evaluate and predict, checked before the first step
(keras_kd.checks.data): bad data is refused naming the fix, and unusual but
valid data (nested tuples, uint8) trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.distillers import (
    X,
    Y,
    batches as _batches,
    fit as _fit,
    kd_distiller as _distiller,
)
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


# --- Data structures: TFDS, tf.data, nested inputs, dtypes ---------------------
def test_tfds_style_dict_dataset_names_the_map():
    data = tf.data.Dataset.from_tensor_slices({"image": X, "label": Y}).batch(8)
    with pytest.raises(ValueError, match=r"dataset.map\(lambda d: \(d\['image'\], d\['label'\]\)\)"
                                         r".*as_supervised=True"):
        _fit(_distiller(), data)


def test_nested_tuple_inputs_train():
    history = _fit(_distiller(), _batches((X,), Y))
    assert history["student_loss"][0] > 0


def test_unbatched_dataset_says_batch_it():
    with pytest.raises(ValueError, match=r"without a batch axis.*dataset.batch\(32\)"):
        _fit(_distiller(), tf.data.Dataset.from_tensor_slices((X, Y)))


def test_ragged_inputs_are_refused():
    ragged = tf.ragged.constant([[1.0, 2.0], [3.0]])
    data = tf.data.Dataset.from_tensor_slices((ragged, [0, 1])).batch(2)
    with pytest.raises(TypeError, match=r"ragged.*to_tensor\(\)"):
        _fit(_distiller(), data)


def test_string_labels_are_refused_with_stringlookup():
    data = _batches(X, np.array([str(v) for v in Y]))
    with pytest.raises(TypeError, match="dtype string.*StringLookup"):
        _fit(_distiller(), data)


def test_labels_as_a_python_list_say_np_asarray():
    with pytest.raises(TypeError, match=r"Python list of 32 numbers.*np.asarray"):
        _fit(_distiller(), X, list(Y))


def test_uint8_images_and_labels_train():
    history = _fit(_distiller(), _batches((X * 255).astype("uint8"), Y.astype("uint8")))
    assert history["student_loss"][0] > 0


# --- Labels, sample weights and validation data checked up front ---------------
def test_steps_per_execution_trains_and_checks_labels_up_front():
    assert len(_fit(_distiller(steps_per_execution=3), X, Y, batch_size=4)["loss"]) == 1
    with pytest.raises(ValueError, match=r"Labels range over \[-2, 8\]"):
        _fit(_distiller(steps_per_execution=3), X, np.where(Y > 8, -2, Y), batch_size=4)


@pytest.mark.parametrize("weights, message", [
    (np.ones((32, 2)), r"shape \(32, 2\).*one weight per sample"),
    (-np.ones(32), "negative, NaN or Inf"),
    (np.full(32, np.nan), "negative, NaN or Inf"),
])
def test_bad_sample_weights_are_refused_up_front(weights, message):
    with pytest.raises(ValueError, match=message):
        _fit(_distiller(), X, Y, sample_weight=weights)


def test_validation_data_is_checked_up_front():
    with pytest.raises(ValueError, match=r"Labels range over \[5, 14\]"):
        _fit(_distiller(), X, Y, validation_data=(X, Y + 5))


# --- predict ---------------------------------------------------------------------
def test_predict_on_unbatched_data_is_refused():
    distiller = _distiller()
    with pytest.raises(ValueError, match="without a batch axis"):
        distiller.predict(tf.data.Dataset.from_tensor_slices(X), verbose=0)
    with pytest.raises(ValueError, match=r"x\[None\]"):
        distiller.predict(X[0], verbose=0)
    assert distiller.predict(X[:1], verbose=0).shape == (1, 10)


def test_predict_on_a_dict_with_a_wrong_key_names_the_expected_key():
    distiller = _distiller()
    name = distiller.student.layers[0].name  # the InputLayer
    with pytest.raises(ValueError, match=f"Expected the following keys: \\['{name}'\\]"):
        distiller.predict({"x": X}, verbose=0)
