"""Hinton KD checked against an independent numpy derivation of the formula,
and against 80-digit decimal arithmetic at temperatures up to 1e12."""

import decimal
import math
from decimal import Decimal

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_kd import losses

from tests.helpers.numpy_logits import numpy_kd, numpy_kd_per_sample


def exact_kd_per_sample(teacher, student, temperature, digits=80):
    """T² · KL per row in `digits`-digit decimal arithmetic: the float32
    logits are exact decimals, so only the exp/log roundings (1e-80) remain,
    whatever the cancellation at large T."""
    out = []
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        big_t = Decimal(float(temperature))
        for t_row, s_row in zip(np.asarray(teacher, np.float64), np.asarray(student, np.float64)):
            a = [Decimal(float(v)) / big_t for v in t_row]
            b = [Decimal(float(v)) / big_t for v in s_row]
            log_za = sum(v.exp() for v in a).ln()
            log_zb = sum(v.exp() for v in b).ln()
            kl = sum((ai - log_za).exp() * ((ai - log_za) - (bi - log_zb)) for ai, bi in zip(a, b))
            out.append(float(kl * big_t * big_t))
    return np.array(out)


def exact_kd_gradient(teacher, student, temperature, digits=60):
    """d kd_loss / d student = T · (q − p) / batch, in decimal arithmetic."""
    rows = []
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        big_t = Decimal(float(temperature))
        for t_row, s_row in zip(np.asarray(teacher, np.float64), np.asarray(student, np.float64)):
            ea = [(Decimal(float(v)) / big_t).exp() for v in t_row]
            eb = [(Decimal(float(v)) / big_t).exp() for v in s_row]
            za, zb = sum(ea), sum(eb)
            rows.append([float(big_t * (qb / zb - pa / za)) for pa, qb in zip(ea, eb)])
    return np.array(rows) / len(rows)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 20.0])
def test_kd_loss_matches_numpy(temperature):
    rng = np.random.default_rng(0)
    teacher = rng.normal(scale=3.0, size=(16, 10)).astype("float32")
    student = rng.normal(scale=3.0, size=(16, 10)).astype("float32")
    got = np.asarray(losses.kd_loss(teacher, student, temperature))
    assert got.shape == (16,)
    np.testing.assert_allclose(got, numpy_kd_per_sample(teacher, student, temperature), rtol=1e-5)
    np.testing.assert_allclose(got.mean(), numpy_kd(teacher, student, temperature), rtol=1e-5)


def test_kd_loss_hand_value():
    # p = softmax([2, 1, .1] / 2), q uniform: KL = Σ p log(3p), times T² = 4.
    p = np.exp(np.array([1.0, 0.5, 0.05]))
    p /= p.sum()
    expected = 4.0 * float((p * np.log(3 * p)).sum())
    got = float(np.asarray(losses.kd_loss(np.array([[2.0, 1.0, 0.1]]), np.ones((1, 3)), 2.0))[0])
    assert got == pytest.approx(expected, rel=1e-6)
    assert got == pytest.approx(0.2895, abs=1e-4)  # the docstring's example


def test_kd_loss_is_zero_for_identical_logits():
    logits = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(np.asarray(losses.kd_loss(logits, logits, 3.0)), 0.0, atol=1e-6)
    # Equal up to a constant shift per row: softmax is shift-invariant.
    np.testing.assert_allclose(
        np.asarray(losses.kd_loss(logits, logits + 7.0, 3.0)), 0.0, atol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 5.0, 1e2, 1e4, 1e6])
def test_kd_two_classes_closed_form_scales_with_t_squared(temperature):
    # t = [1, 0], s = [0, 1]: log(p_1/q_1) = 1/T, log(p_2/q_2) = -1/T, so
    # KL = (p_1 - p_2)/T = tanh(1/2T)/T and T²·KL = T·tanh(1/2T) -> 1/2.
    expected = temperature * math.tanh(0.5 / temperature)
    got = float(np.asarray(
        losses.kd_loss(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), temperature))[0])
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 4.0, 1e2, 1e4, 1e6, 1e12])
@pytest.mark.parametrize("scale", [1.0, 20.0])
def test_kd_is_exact_at_any_temperature(temperature, scale):
    rng = np.random.default_rng(10)
    teacher = rng.normal(scale=scale, size=(6, 10)).astype("float32")
    student = rng.normal(scale=scale, size=(6, 10)).astype("float32")
    expected = exact_kd_per_sample(teacher, student, temperature)
    got = np.asarray(losses.kd_loss(teacher, student, temperature))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    compiled = tf.function(losses.kd_loss, jit_compile=True)
    np.testing.assert_allclose(
        np.asarray(compiled(teacher, student, temperature)), expected, rtol=1e-5)


def test_large_temperature_limit_is_centred_logit_matching():
    rng = np.random.default_rng(11)
    teacher = rng.normal(scale=3.0, size=(5, 7)).astype("float32")
    student = rng.normal(scale=3.0, size=(5, 7)).astype("float32")
    u = teacher.astype(np.float64) - student
    centred = u - u.mean(axis=1, keepdims=True)
    limit = (centred**2).sum(axis=1) / (2 * 7)
    got = np.asarray(losses.kd_loss(teacher, student, 1e6))
    np.testing.assert_allclose(got, limit, rtol=1e-4)
    # The issue-14 case: the float32 direct form gave a negative KL here.
    assert np.all(got > 0)


@pytest.mark.parametrize("temperature", [1.0, 4.0, 1e2, 1e4, 1e6])
def test_kd_gradient_is_exact_at_any_temperature(temperature):
    rng = np.random.default_rng(12)
    teacher = rng.normal(scale=3.0, size=(4, 6)).astype("float32")
    student = tf.Variable(rng.normal(scale=3.0, size=(4, 6)).astype("float32"))

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(losses.kd_loss(teacher, student, temperature))
        return tape.gradient(value, student)

    expected = exact_kd_gradient(teacher, student.numpy(), temperature)
    got = gradient().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_huge_logits_and_disagreeing_rows_stay_finite_and_exact():
    # KL of ~100 nats (a confident, wrong student) takes the direct form.
    teacher = np.array([[60.0, 0.0, -60.0], [1.0, 1.0, 1.0]], "float32")
    student = np.array([[-60.0, 0.0, 60.0], [1.0, 1.0, 1.0]], "float32")
    got = np.asarray(losses.kd_loss(teacher, student, 1.0))
    np.testing.assert_allclose(got, exact_kd_per_sample(teacher, student, 1.0), rtol=1e-5, atol=1e-7)


def test_temperature_above_the_valid_range_raises():
    with pytest.raises(ValueError, match="T <= 1e6"):
        losses.kd_loss(np.zeros((1, 2)), np.zeros((1, 2)), 1e16)
    with pytest.raises(ValueError, match="above 1e"):
        losses.KD(temperature=1e20)


def test_kd_loss_is_exact_in_float16_inputs():
    rng = np.random.default_rng(2)
    teacher = rng.normal(scale=8.0, size=(8, 10)).astype("float16")
    student = rng.normal(scale=8.0, size=(8, 10)).astype("float16")
    got = losses.kd_loss(teacher, student, 4.0)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    np.testing.assert_allclose(
        np.asarray(got),
        numpy_kd_per_sample(teacher.astype("float32"), student.astype("float32"), 4.0),
        rtol=1e-5,
    )


def test_kd_loss_per_sample_matches_numpy_element_by_element():
    rng = np.random.default_rng(3)
    t, s = rng.normal(scale=2.0, size=(2, 6, 4)).astype("float32")
    per_sample = np.asarray(losses.kd_loss(t, s, 2.0))
    assert per_sample.shape == (6,)
    np.testing.assert_allclose(per_sample, numpy_kd_per_sample(t, s, 2.0), rtol=1e-5)


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


def test_docstring_examples_run():
    import doctest

    from keras_kd.losses import kd as logits

    result = doctest.testmod(logits)
    assert result.attempted >= 2 and result.failed == 0


def _kd_gradients(teacher, student, temperature):
    """d mean_b kd_loss / d (teacher, student), on the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.grad(lambda t, s: losses.kd_loss(t, s, temperature).mean(), argnums=(0, 1))(
            teacher, student)
    if keras.backend.backend() == "torch":
        import torch

        t, s = (torch.tensor(a, requires_grad=True) for a in (teacher, student))
        return torch.autograd.grad(losses.kd_loss(t, s, temperature).mean(), (t, s))
    t, s = tf.Variable(teacher), tf.Variable(student)
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(losses.kd_loss(t, s, temperature))
    return tape.gradient(value, [t, s])


@pytest.mark.every_backend
@pytest.mark.parametrize("temperature", [1.0, 4.0, 100.0])
def test_kd_gradients_of_teacher_and_student_logits_match_numpy(temperature):
    # The written-out gradients (not traced through the stable branches):
    # from the definition in float64, d/dt_j = T·p_j·(log p_j − log q_j − KL)
    # and d/ds_j = T·(q_j − p_j), per sample, over the batch mean.
    rng = np.random.default_rng(5)
    teacher = rng.normal(scale=3.0, size=(6, 7)).astype("float32")
    student = rng.normal(scale=3.0, size=(6, 7)).astype("float32")
    t, s = teacher.astype(np.float64) / temperature, student.astype(np.float64) / temperature
    log_p = t - np.log(np.exp(t - t.max(1, keepdims=True)).sum(1, keepdims=True)) - t.max(1, keepdims=True)
    log_q = s - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True)) - s.max(1, keepdims=True)
    p, q = np.exp(log_p), np.exp(log_q)
    kl = (p * (log_p - log_q)).sum(1, keepdims=True)
    want_t = temperature * p * (log_p - log_q - kl) / len(p)
    want_s = temperature * (q - p) / len(p)
    got_t, got_s = (np.asarray(keras.ops.convert_to_numpy(g)) for g in
                    _kd_gradients(teacher, student, temperature))
    np.testing.assert_allclose(got_t, want_t, rtol=1e-4, atol=1e-6 * np.abs(want_t).max())
    np.testing.assert_allclose(got_s, want_s, rtol=1e-4, atol=1e-6 * np.abs(want_s).max())
