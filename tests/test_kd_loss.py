"""Hinton KD checked against an independent numpy derivation of the formula."""

import keras
import numpy as np
import pytest

from keras_kd import losses


def numpy_kd(teacher, student, temperature):
    """Hinton et al. 2015: T² · mean_b KL(softmax(t/T) || softmax(s/T))."""
    def softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    p = softmax(teacher.astype(np.float64) / temperature)
    q = softmax(student.astype(np.float64) / temperature)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=-1)
    return float(kl.mean() * temperature**2)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 20.0])
def test_kd_loss_matches_numpy(temperature):
    rng = np.random.default_rng(0)
    teacher = rng.normal(scale=3.0, size=(16, 10)).astype("float32")
    student = rng.normal(scale=3.0, size=(16, 10)).astype("float32")
    got = float(losses.kd_loss(teacher, student, temperature))
    np.testing.assert_allclose(got, numpy_kd(teacher, student, temperature), rtol=1e-5)


def test_kd_loss_hand_value():
    # p = softmax([2, 1, .1] / 2), q uniform: KL = Σ p log(3p), times T² = 4.
    p = np.exp(np.array([1.0, 0.5, 0.05]))
    p /= p.sum()
    expected = 4.0 * float((p * np.log(3 * p)).sum())
    got = float(losses.kd_loss(np.array([[2.0, 1.0, 0.1]]), np.ones((1, 3)), 2.0))
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(0.2895, abs=1e-4)  # the docstring's example


def test_kd_loss_is_zero_for_identical_logits_and_scales_with_t_squared():
    logits = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    assert float(losses.kd_loss(logits, logits, 3.0)) == pytest.approx(0.0, abs=1e-6)
    t = np.array([[1.0, 0.0]])
    s = np.array([[0.0, 1.0]])
    raw = numpy_kd(t, s, 5.0) / 25.0
    assert float(losses.kd_loss(t, s, 5.0)) == pytest.approx(25.0 * raw, rel=1e-5)


def test_kd_loss_is_exact_in_float16_inputs():
    rng = np.random.default_rng(2)
    teacher = rng.normal(scale=8.0, size=(8, 10)).astype("float16")
    student = rng.normal(scale=8.0, size=(8, 10)).astype("float16")
    got = losses.kd_loss(teacher, student, 4.0)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    np.testing.assert_allclose(
        float(got), numpy_kd(teacher.astype("float32"), student.astype("float32"), 4.0),
        rtol=1e-5,
    )


def test_kd_per_sample_mean_is_kd_loss():
    rng = np.random.default_rng(3)
    t, s = rng.normal(size=(2, 6, 4)).astype("float32")
    per_sample = np.asarray(losses.kd_per_sample(t, s, 2.0))
    assert per_sample.shape == (6,)
    assert per_sample.mean() == pytest.approx(float(losses.kd_loss(t, s, 2.0)), rel=1e-6)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="temperature"):
        losses.KD(temperature=bad)
    with pytest.raises(ValueError, match="temperature"):
        losses.kd_loss(np.zeros((1, 2)), np.zeros((1, 2)), bad)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_weight_must_be_finite_and_non_negative(bad):
    with pytest.raises(ValueError, match="weight"):
        losses.KD(weight=bad)
    term = losses.KD()
    with pytest.raises(ValueError, match="weight"):
        term.weight = bad


def test_kd_config_round_trip():
    term = losses.KD(temperature=3.0, weight=0.7, name="soft")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(term)
    )
    assert isinstance(restored, losses.KD)
    assert restored.temperature == 3.0
    assert restored.weight == pytest.approx(0.7)
    assert restored.name == "soft"
