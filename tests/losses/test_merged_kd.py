"""MergedKD and merged_kd_loss (teachers of other classes merged into one
student's classes), checked against numpy and in a Distiller."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses, teachers
from tests.helpers.models import tiny_cnn
from tests.helpers.numpy_logits import log_softmax as _log_softmax, numpy_kd_per_sample


def numpy_merged_kd(teacher_list, student, index_list, temperature):
    """T² · mean_b Σ_k KL(softmax(t_k/T) || softmax(s[:, idx_k]/T))."""
    total = np.zeros(student.shape[0])
    for t, idx in zip(teacher_list, index_list):
        log_p = _log_softmax(t / temperature)
        log_q = _log_softmax(student[:, idx] / temperature)
        total += (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)
    return float(total.mean() * temperature**2)


# ----------------------------------------------------------------------
# merged_kd_loss.
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_merged_kd_loss_matches_numpy(temperature):
    rng = np.random.default_rng(4)
    t_a = rng.normal(scale=3.0, size=(8, 4)).astype("float32")
    t_b = rng.normal(scale=3.0, size=(8, 5)).astype("float32")
    s = rng.normal(scale=3.0, size=(8, 10)).astype("float32")
    idx = [[0, 1, 2, 3], [9, 2, 5, 7, 8]]  # overlapping, unordered
    per_sample = keras.ops.convert_to_numpy(losses.merged_kd_loss([t_a, t_b], s, idx, temperature))
    assert per_sample.shape == (8,)
    expected = [numpy_merged_kd([t_a[i:i + 1], t_b[i:i + 1]], s[i:i + 1], idx, temperature)
                for i in range(8)]
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5)


def test_merged_kd_loss_docstring_value_and_identity_case():
    a = np.array([[2.0, 0.0]])
    b = np.array([[0.0, 1.0, 0.0]])
    s = np.zeros((1, 4))
    expected = numpy_merged_kd([a, b], s, [[0, 1], [3, 1, 2]], 1.0)
    assert round(expected, 4) == 0.4511
    got = keras.ops.convert_to_numpy(losses.merged_kd_loss([a, b], s, [[0, 1], [3, 1, 2]], 1.0))
    np.testing.assert_allclose(got, [expected], rtol=1e-6)
    # One teacher covering every class in order is plain KD.
    rng = np.random.default_rng(5)
    t, s = rng.normal(size=(2, 6, 5)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(losses.merged_kd_loss([t], s, [list(range(5))], 2.0)),
        numpy_kd_per_sample(t, s, 2.0), rtol=1e-5)


def test_merged_kd_loss_errors():
    t = np.zeros((2, 3), "float32")
    s = np.zeros((2, 5), "float32")
    with pytest.raises(ValueError, match=r"Teacher '#0' maps to student classes \[5\], out of range.*5 classes"):
        losses.merged_kd_loss([t], s, [[0, 1, 5]])
    with pytest.raises(ValueError, match="Teacher '#0' outputs 3 logits but was given 2"):
        losses.merged_kd_loss([t], s, [[0, 1]])
    with pytest.raises(ValueError, match=r"'#1' maps several.*\[2\]"):
        losses.merged_kd_loss([t, t], s, [[0, 1, 2], [2, 2, 3]])
    with pytest.raises(ValueError, match="negative"):
        losses.merged_kd_loss([t], s, [[0, -1, 2]])
    with pytest.raises(TypeError, match="integers"):
        losses.merged_kd_loss([t], s, [[0, 1.5, 2]])
    with pytest.raises(ValueError, match="2 class lists for 1 teachers"):
        losses.merged_kd_loss([t], s, [[0, 1, 2], [3]])


# ----------------------------------------------------------------------
# MergedKD.
def test_merged_kd_prepare_errors():
    a, b = tiny_cnn(4, classes=5, name="a"), tiny_cnn(4, classes=5, name="b")
    merged = teachers.Merged({a: [0, 1, 2, 3, 4], b: [5, 6, 7, 8, 9]})
    with pytest.raises(ValueError, match=r"Teacher 'b' maps to student classes \[8, 9\], out of range.*8 classes"):
        losses.MergedKD().prepare(merged, tiny_cnn(4, classes=8, name="student"))
    with pytest.raises(ValueError, match="needs the teachers' class map"):
        losses.MergedKD().prepare(tiny_cnn(4, name="plain"), tiny_cnn(4, name="student"))
    with pytest.raises(ValueError, match="but the Merged teacher 'merged' maps"):
        losses.MergedKD(class_indices=[[0, 1, 2, 3, 4], [9, 8, 7, 6, 5]]).prepare(
            merged, tiny_cnn(4, name="student")
        )
    with pytest.raises(ValueError, match="outputs 10 logits but the class map"):
        losses.MergedKD(class_indices=[[0, 1, 2]]).prepare(
            tiny_cnn(4, name="plain"), tiny_cnn(4, name="student")
        )
    assert losses.MergedKD.checks_class_count is False
    assert losses.KD.checks_class_count is True


@pytest.mark.parametrize("jit_compile", [False, True])
def test_merged_kd_in_a_distiller_without_labels(digits_batch, jit_compile):
    x, _ = digits_batch
    x = x[:16]
    a, b = tiny_cnn(4, classes=4, name="a"), tiny_cnn(4, classes=6, name="b")
    merged = teachers.Merged({a: [0, 2, 4, 6], b: [1, 3, 5, 7, 8, 9]})
    student = tiny_cnn(4, name="student")
    distiller = keras_kd.Distiller(merged, student, losses=[losses.MergedKD(temperature=2.0)])
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=jit_compile)
    history = distiller.fit(x, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["merged_kd"][0])
    t_a, t_b, s = (keras.ops.convert_to_numpy(m(x[8:])) for m in (a, b, student))
    parts = distiller.compute_distillation_loss(
        {"logits": np.concatenate([t_a, t_b], -1)}, {"logits": s}
    )[1]
    np.testing.assert_allclose(
        float(parts["merged_kd"]),
        numpy_merged_kd([t_a, t_b], s, [[0, 2, 4, 6], [1, 3, 5, 7, 8, 9]], 2.0),
        rtol=1e-4, atol=1e-6,
    )


def test_overlapping_merged_teachers_of_other_width(digits_batch):
    x, _ = digits_batch
    merged = teachers.Merged(
        {tiny_cnn(4, classes=6, name="a"): [0, 1, 2, 3, 4, 5], tiny_cnn(4, classes=6, name="b"): [4, 5, 6, 7, 8, 9]}
    )
    distiller = keras_kd.Distiller(merged, tiny_cnn(4, name="student"), losses=[losses.MergedKD()])
    distiller.compile(optimizer="sgd")
    value = distiller.fit(x[:8], verbose=0).history["merged_kd"][0]
    assert np.isfinite(value) and value > 0
