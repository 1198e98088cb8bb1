"""Labels on the Distiller side: dense labels (batch, H, W) with ignored pixels
(-1), and a term that needs labels fed unlabeled data."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.labels import is_dense, mask_unlabeled, term_labels
from keras_kd.losses import KD, DistillationLoss
from tests.helpers.models import tiny_cnn

CLASSES = 4


def dense_model(width, name):
    x = keras.Input((6, 6, 2))
    f = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="feat")(x)
    return keras.Model(x, keras.layers.Conv2D(CLASSES, 1, name="logits")(f), name=name)


def batch(seed=0, n=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 2)).astype("float32")
    y = rng.integers(0, CLASSES, (n, 6, 6)).astype("int32")
    y[rng.uniform(size=y.shape) < 0.3] = -1
    y[0, :3] = -1  # an image with many ignored pixels
    return x, y


def numpy_pixel_ce(logits, y, weights=None):
    """Mean cross-entropy over labelled pixels (weighted per image)."""
    logits = keras.ops.convert_to_numpy(logits).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, np.maximum(y, 0)[..., None], -1)[..., 0]
    w = (y >= 0).astype("float64")
    if weights is not None:
        w = w * np.asarray(weights, np.float64)[:, None, None]
    return (ce * w).sum() / (y >= 0).sum()


def test_dense_detection_by_shape():
    y = np.zeros((2, 5, 5), "int32")
    assert is_dense(y, np.zeros((2, 5, 5, 3)))
    assert is_dense(y[..., None], np.zeros((2, 5, 5, 3)))
    assert is_dense(y)  # (batch, H, W) without predictions
    assert not is_dense(np.zeros((2,), "int32"), np.zeros((2, 3)))
    assert not is_dense(np.zeros((2, 1), "int32"), np.zeros((2, 3)))
    assert not is_dense(np.zeros((2, 3), "int32"), np.zeros((2, 3)))  # multi-hot
    assert not is_dense(np.zeros((2, 5, 5, 3), "float32"))


def test_mask_weights_pixels_and_scales_to_the_labelled_mean():
    y = np.array([[[0, -1], [2, 1]], [[-1, -1], [3, 0]]], "int32")
    labels, weight, scale = mask_unlabeled(y, np.array([1.0, 2.0]), np.zeros((2, 2, 2, 4)))
    np.testing.assert_array_equal(labels, np.maximum(y, 0))
    np.testing.assert_array_equal(weight, [[[1, 0], [1, 1]], [[0, 0], [2, 2]]])
    assert float(scale) == pytest.approx(8 / 5)
    # terms get dense labels untouched (they mask ignored pixels themselves)
    raw, w, s = term_labels(y, None, np.zeros((2, 2, 2, 4)))
    assert raw is y and w is None and s == 1.0


@pytest.mark.parametrize("loss", [
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1),
    "sparse_categorical_crossentropy",
])
def test_student_loss_is_the_mean_over_labelled_pixels(loss):
    keras.utils.set_random_seed(0)
    teacher, student = dense_model(8, "t"), dense_model(4, "s")
    distiller = keras_kd.Distiller(teacher, student, losses=[KD(temperature=2)])
    distiller.compile(optimizer="sgd", loss=loss)
    x, y = batch()
    logits = student(x)
    got = float(distiller.student_loss(y, logits))
    assert got == pytest.approx(numpy_pixel_ce(logits, y), rel=1e-5)
    weights = np.array([1.0, 0.5, 2.0], "float32")
    got_weighted = float(distiller.student_loss(y, logits, weights))
    assert got_weighted == pytest.approx(numpy_pixel_ce(logits, y, weights), rel=1e-5)


def test_fit_and_evaluate_with_ignored_pixels_metrics_skip_them():
    keras.utils.set_random_seed(1)
    teacher, student = dense_model(8, "t"), dense_model(4, "s")
    distiller = keras_kd.Distiller(teacher, student, losses=[KD(temperature=2)])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = batch(seed=2, n=6)
    history = distiller.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    logs = distiller.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    predicted = np.argmax(student.predict(x, verbose=0), -1)
    labelled = y >= 0
    assert logs["accuracy"] == pytest.approx(float((predicted == y)[labelled].mean()), abs=1e-6)
    assert logs["student_loss"] == pytest.approx(numpy_pixel_ce(student(x), y), rel=1e-4)


class LabelRecorder(DistillationLoss):
    """Returns zeros and remembers the labels it was given."""

    requires_labels = True
    seen = []

    def call(self, teacher, student, labels=None, training=None):
        LabelRecorder.seen.append(np.asarray(labels))
        return keras.ops.zeros((keras.ops.shape(student["logits"])[0],))


def test_terms_receive_the_dense_labels_with_their_ignored_pixels():
    teacher, student = dense_model(8, "t"), dense_model(4, "s")
    distiller = keras_kd.Distiller(teacher, student, losses=[LabelRecorder(name="rec")])
    x, y = batch()
    LabelRecorder.seen.clear()
    distiller.compute_distillation_loss(distiller.teacher_view(x), distiller.student_view(x), y)
    np.testing.assert_array_equal(LabelRecorder.seen[-1], y)


def test_dense_kd_term_masks_the_pixels_the_labels_ignore():
    keras.utils.set_random_seed(3)
    teacher, student = dense_model(8, "t"), dense_model(4, "s")
    distiller = keras_kd.Distiller(teacher, student, losses=[KD(temperature=3)])
    x, y = batch(seed=4)
    t, s = distiller.teacher_view(x), distiller.student_view(x)
    _, parts = distiller.compute_distillation_loss(t, s, y, training=False)
    tl = keras.ops.convert_to_numpy(t["logits"]).astype(np.float64) / 3
    sl = keras.ops.convert_to_numpy(s["logits"]).astype(np.float64) / 3
    lp = tl - np.log(np.exp(tl).sum(-1, keepdims=True))
    lq = sl - np.log(np.exp(sl).sum(-1, keepdims=True))
    per_pixel = (np.exp(lp) * (lp - lq)).sum(-1) * 9
    expected = np.mean([per_pixel[b][y[b] >= 0].mean() for b in range(len(y))])
    assert float(parts["kd"]) == pytest.approx(expected, rel=1e-5)


def test_term_needing_labels_fed_unlabeled_data(digits_batch):
    x, _ = digits_batch

    class NeedsLabels(losses.KD):
        requires_labels = True

    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[NeedsLabels(name="needs_labels")])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="'needs_labels'.*needs labels"):
        distiller.fit(x, batch_size=16, verbose=0)
