"""Semi-supervised batches: label -1 gets distillation but no student loss."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import datasets, losses
from tests.helpers.models import tiny_cnn
from tests.helpers.numpy_logits import numpy_dkd, numpy_kd, numpy_nkd, sparse_ce


def test_student_loss_and_metrics_cover_labeled_samples_only(digits_batch):
    x, y = digits_batch
    y_mixed = y.copy().astype("int32")
    y_mixed[::2] = -1  # half the batch unlabeled
    teacher, student = tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student")
    distiller = keras_kd.Distiller(teacher, student, losses=[losses.KD(temperature=2.0)], student_loss_weight=0.5)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    s_logits = keras.ops.convert_to_numpy(student(x, training=True)).astype(np.float64)
    t_logits = teacher.predict(x, verbose=0)
    logs = distiller.train_on_batch(x, y_mixed, return_dict=True)
    labeled = y_mixed >= 0
    expected_ce = sparse_ce(s_logits[labeled], y[labeled]).mean()  # mean over labeled only
    expected_kd = numpy_kd(t_logits, s_logits, 2.0)  # over all samples
    assert logs["student_loss"] == pytest.approx(expected_ce, rel=1e-4)
    assert logs["kd"] == pytest.approx(expected_kd, rel=1e-4)
    assert logs["loss"] == pytest.approx(0.5 * expected_ce + expected_kd, rel=1e-4)
    expected_accuracy = (s_logits[labeled].argmax(-1) == y[labeled]).mean()
    assert logs["accuracy"] == pytest.approx(expected_accuracy)


def test_a_fully_unlabeled_batch_has_zero_student_loss(digits_batch):
    x, _ = digits_batch
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    logs = distiller.train_on_batch(x, -np.ones(len(x), "int32"), return_dict=True)
    assert logs["student_loss"] == 0.0
    assert np.isfinite(logs["loss"]) and logs["loss"] == pytest.approx(logs["kd"])


def test_semi_supervised_pipeline_mixes_and_marks_unlabeled():
    x, y = datasets.load("digits", "train", as_numpy=True)
    data = datasets.semi_supervised((x[:100], y[:100]), x[100:300], batch_size=50, seed=3)
    labels = np.concatenate([batch_y.numpy() for _, batch_y in data])
    assert len(labels) == 300
    assert (labels == -1).sum() == 200
    assert sorted(set(labels[labels >= 0].tolist())) == sorted(set(y[:100].tolist()))
    first = next(iter(data))[1].numpy()
    assert 0 < (first == -1).sum() < 50  # shuffled: a batch holds both kinds


def test_semi_supervised_refuses_one_hot_or_negative_labels():
    x = np.zeros((4, 8, 8, 1), "float32")
    with pytest.raises(TypeError, match="integer class labels"):
        datasets.semi_supervised((x, np.eye(4, dtype="float32")), x)
    with pytest.raises(ValueError, match="-1 marks unlabeled"):
        datasets.semi_supervised((x, np.array([0, 1, -1, 2])), x)


def test_label_reading_terms_cover_labeled_samples_only(digits_batch):
    x, y = digits_batch
    y_mixed = y.copy().astype("int32")
    y_mixed[::2] = -1
    labeled = y_mixed >= 0
    teacher, student = tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student")
    distiller = keras_kd.Distiller(teacher, student, losses=[losses.DKD(warmup_epochs=0), losses.NKD()])
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    s_logits = keras.ops.convert_to_numpy(student(x, training=True))
    t_logits = teacher.predict(x, verbose=0)
    logs = distiller.train_on_batch(x, y_mixed, return_dict=True)
    # Independent numpy ports of the authors' code, on the labeled samples.
    expected_dkd = numpy_dkd(t_logits[labeled], s_logits[labeled], y[labeled], 1.0, 8.0, 4.0)
    expected_nkd = numpy_nkd(t_logits[labeled], s_logits[labeled], y[labeled], 1.0, 1.5)
    # Absolute tolerance for DKD: T²·KL of two nearly equal untrained models.
    assert expected_dkd > 1e-3  # large enough for the tolerance to matter
    assert logs["dkd"] == pytest.approx(expected_dkd, rel=1e-4, abs=2e-5)
    assert logs["nkd"] == pytest.approx(expected_nkd, rel=1e-4)
    # Unlabeled samples must not count: over all samples the values differ.
    everything = numpy_nkd(t_logits, s_logits, np.maximum(y_mixed, 0), 1.0, 1.5)
    assert abs(everything - expected_nkd) > 1e-3
