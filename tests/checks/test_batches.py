"""Checks of each batch inside the train/test step, and of tf.data labels in
the input pipeline (keras_kd.checks.batches): what cannot be seen before the
first batch fails in graph, naming the value; batches without labels train
or evaluate on the label-free terms, or say why they cannot."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers.distillers import (
    X,
    Y,
    batches as _batches,
    fit as _fit,
    kd_distiller as _distiller,
)


# --- Checked in graph: shapes, labels, sample weights --------------------------
def test_unknown_static_shapes_are_checked_in_graph():
    spec = (tf.TensorSpec((None, None, None, 1), tf.float32), tf.TensorSpec((None,), tf.int64))

    def batches(size):
        def generate():
            for _ in range(2):
                yield np.zeros((8, size, size, 1), np.float32), Y[:8]
        return tf.data.Dataset.from_generator(generate, output_signature=spec)

    assert len(_fit(_distiller(), batches(8))["loss"]) == 1  # the right size trains
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"batch has input shape\] \[8 9 9 1\]"):
        _fit(_distiller(), batches(9))


def test_generator_with_bad_labels_fails_in_graph_naming_the_label():
    def generate():
        while True:
            yield X[:8], np.full(8, 12)

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label\] \[12\] \[is out of range"):
        _fit(_distiller(), generate(), steps_per_epoch=2)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("bad, message", [(-2, r"label\] \[-2\] \[is negative"),
                                          (10, r"label\] \[10\] \[is out of range")])
def test_tf_data_labels_are_checked_in_graph(jit, bad, message):
    distiller = _distiller(jit_compile=jit)
    labels = np.where(Y > 5, bad, Y)
    data = tf.data.Dataset.from_tensor_slices((X, labels)).batch(8)
    before = [w.numpy().copy() for w in distiller.student.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        distiller.fit(data, epochs=1, verbose=0)
    # The first batch (labels 0..5 are fine, 6.. are bad) already holds a bad
    # label, so no gradient step was applied.
    for old, new in zip(before, distiller.student.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())


def test_jit_compile_and_mixed_precision_still_check_labels():
    keras.config.set_dtype_policy("mixed_float16")
    data = _batches(X, np.where(Y > 5, -2, Y))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label\] \[-2\]"):
        _fit(_distiller(jit_compile=True), data)


def test_unlabeled_minus_one_and_non_finite_float_labels():
    distiller = _distiller()
    unlabeled = tf.data.Dataset.from_tensor_slices((X, np.where(Y > 5, -1, Y))).batch(8)
    history = distiller.fit(unlabeled, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    one_hot = keras.utils.to_categorical(Y, 10)
    one_hot[3, 0] = np.nan
    dense = _distiller(loss="categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((X, one_hot)).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        dense.fit(data, epochs=1, verbose=0)


def test_label_check_is_a_no_op_for_valid_labels():
    from keras_kd.checks.batches import check_label_values

    y = tf.constant([0, 9, -1])
    np.testing.assert_array_equal(tf.function(check_label_values)(y, 10), y)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[3\] \[is out of range"):
        tf.function(check_label_values)(tf.constant([0, 3]), 3)


def test_negative_sample_weights_in_a_dataset_fail_in_graph():
    data = _batches(X, Y, -np.ones(32, np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample weights must be finite and >= 0"):
        _fit(_distiller(), data)


# --- Batches without labels ---------------------------------------------------
def test_evaluate_without_labels_raises():
    distiller = _distiller()
    with pytest.raises(ValueError, match="evaluate\\(\\) got inputs without labels"):
        distiller.evaluate(X, verbose=0)
    with pytest.raises(ValueError, match="without labels"):
        distiller.evaluate(tf.data.Dataset.from_tensor_slices(X).batch(8), verbose=0)


def test_validation_data_without_labels_raises():
    with pytest.raises(ValueError, match="evaluate\\(\\) got inputs without labels"):
        _fit(_distiller(), X, Y, validation_data=X)


def test_evaluate_without_labels_reports_label_free_terms_when_asked():
    distiller = _distiller(evaluate_distillation=True)
    scores = distiller.evaluate(X, verbose=0, return_dict=True)
    assert "student_loss" not in scores and scores["kd"] > 0
    assert scores["loss"] == pytest.approx(scores["kd"])  # weight 1, no student loss


def test_unlabeled_training_without_terms_raises():
    distiller = _distiller(terms=[])
    with pytest.raises(ValueError, match="nothing to learn from"):
        distiller.fit(X, epochs=1, verbose=0)


def test_unlabeled_training_data_with_a_label_free_term_trains_on_it_alone():
    history = _fit(_distiller(), X)
    assert "student_loss" not in history and history["loss"] == history["kd"]
