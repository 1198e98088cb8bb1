"""Distiller.compile's loss and metrics against a logits student
(keras_kd.checks.compile): a contradiction is refused naming the right
choice, and the metrics Keras resolves give the true accuracy."""

import keras
import pytest

from tests.helpers.distillers import X, Y, fit as _fit, kd_distiller as _distiller
from tests.helpers.models import tiny_cnn


def test_metric_strings_give_the_true_accuracy():
    distiller = _distiller(metrics=["accuracy", "acc", "sparse_categorical_accuracy"])
    _fit(distiller, X, Y)
    scores = distiller.evaluate(X, Y, verbose=0, return_dict=True)
    truth = float((distiller.predict(X, verbose=0).argmax(-1) == Y).mean())
    for name in ("accuracy", "acc", "sparse_categorical_accuracy"):
        assert scores[name] == pytest.approx(truth)


def test_one_hot_labels_with_categorical_loss_and_accuracy():
    one_hot = keras.utils.to_categorical(Y, 10)
    distiller = _distiller(loss="categorical_crossentropy", metrics=["accuracy"])
    _fit(distiller, X, one_hot)
    scores = distiller.evaluate(X, one_hot, verbose=0, return_dict=True)
    truth = float((distiller.predict(X, verbose=0).argmax(-1) == Y).mean())
    assert scores["accuracy"] == pytest.approx(truth)


def test_a_categorical_metric_that_contradicts_the_loss_names_the_right_one():
    with pytest.raises(ValueError, match="Use 'sparse_top_k_categorical_accuracy'"):
        _distiller(metrics=["top_k_categorical_accuracy"])
    with pytest.raises(ValueError, match="Use 'categorical_accuracy'"):
        _distiller(loss="categorical_crossentropy", metrics=["sparse_categorical_accuracy"])


def test_a_probability_loss_on_a_logits_student_is_refused():
    with pytest.raises(ValueError, match=r"from_logits=False.*outputs logits.*from_logits=True"):
        _distiller(loss=keras.losses.SparseCategoricalCrossentropy())
    _distiller(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def test_binary_accuracy_on_logits_thresholds_at_zero():
    distiller = _distiller(terms=[], loss="binary_crossentropy", metrics=["accuracy"],
                           teacher=tiny_cnn(16, classes=1, name="teacher"),
                           student=tiny_cnn(8, classes=1, name="student"))
    labels = (Y > 4).astype("float32")
    logits = distiller.predict(X, verbose=0)[:, 0]
    truth = float(((logits > 0) == labels).mean())
    scores = distiller.evaluate(X, labels, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(truth)
