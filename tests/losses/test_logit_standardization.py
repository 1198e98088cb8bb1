"""Logit standardization (Sun et al., CVPR 2024) against numpy ports of the
authors' `normalize` (sunshangquan/logit-standardization-KD)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_kd import losses
from tests.helpers.numpy_logits import numpy_dkd, numpy_kd_per_sample, numpy_standardize


def _data(seed, n=8, c=10, scale=4.0):
    rng = np.random.default_rng(seed)
    t = (rng.normal(scale=scale, size=(n, c)) + 3.0).astype("float32")
    s = rng.normal(scale=scale / 4, size=(n, c)).astype("float32")
    y = rng.integers(0, c, size=n).astype("int32")
    return t, s, y


def test_standardize_matches_authors_normalize():
    t, _, _ = _data(0)
    got = np.asarray(losses.standardize_logits(t))
    np.testing.assert_allclose(got, numpy_standardize(t), rtol=1e-5, atol=1e-6)
    # The unbiased estimator: a population-std z-score would differ by
    # sqrt(C/(C-1)) = 1.054 for C = 10, far outside the tolerance.
    np.testing.assert_allclose(got.std(axis=-1, ddof=1), 1.0, rtol=1e-5)
    dense = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(losses.standardize_logits(dense)), numpy_standardize(dense), rtol=1e-5, atol=1e-6)


def test_constant_logits_standardize_to_zero_with_finite_gradient():
    z = tf.Variable(np.full((2, 4), 3.0, "float32"))
    with tf.GradientTape() as tape:
        out = losses.standardize_logits(z)
        value = tf.reduce_sum(out * np.arange(4, dtype="float32"))
    assert np.all(out.numpy() == 0.0)
    assert np.all(np.isfinite(tape.gradient(value, z).numpy()))
    with pytest.raises(ValueError, match="classes >= 2"):
        losses.standardize_logits(np.zeros((3, 1)))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_with_standardization_matches_authors_kd_loss(temperature):
    t, s, _ = _data(2)
    expected = numpy_kd_per_sample(numpy_standardize(t), numpy_standardize(s), temperature)
    got = np.asarray(losses.kd_loss(t, s, temperature, logit_standardization=True))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Off by default, and it changes the value (scale 4 vs 1 logits).
    plain = float(np.mean(keras.ops.convert_to_numpy(losses.kd_loss(t, s, temperature))))
    assert abs(plain - expected.mean()) > 0.1 * expected.mean()


def test_standardized_kd_ignores_scale_and_shift_of_the_student():
    t, s, _ = _data(3)
    term = losses.KD(temperature=2.0, logit_standardization=True)
    term.build({"logits": (None, 10)}, {"logits": (None, 10)})
    a = np.asarray(term({"logits": t}, {"logits": s}))
    b = np.asarray(term({"logits": t}, {"logits": 5.0 * s - 2.0}))
    np.testing.assert_allclose(a, b, rtol=1e-4)


@pytest.mark.parametrize("alpha,beta,temperature", [(1.0, 8.0, 4.0), (9.0, 72.0, 2.0)])
def test_dkd_with_standardization_matches_authors_dkd_loss(alpha, beta, temperature):
    t, s, y = _data(4)
    # mdistiller's batch loss of each sample alone: the per-sample values.
    expected = [numpy_dkd(numpy_standardize(t[i:i + 1]), numpy_standardize(s[i:i + 1]),
                          y[i:i + 1], alpha, beta, temperature) for i in range(len(y))]
    got = np.asarray(
        losses.dkd_loss(t, s, y, alpha, beta, temperature, logit_standardization=True))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_dense_standardized_terms_compile_with_xla():
    rng = np.random.default_rng(5)
    t = rng.normal(scale=3.0, size=(2, 3, 3, 5)).astype("float32")
    s = rng.normal(size=(2, 3, 3, 5)).astype("float32")
    y = rng.integers(0, 5, size=(2, 3, 3)).astype("int32")
    flat = lambda a: a.reshape(-1, 5)  # noqa: E731
    expected_kd = numpy_kd_per_sample(numpy_standardize(flat(t)), numpy_standardize(flat(s)), 2.0)
    fn = tf.function(
        lambda a, b: losses.kd_loss(a, b, 2.0, logit_standardization=True), jit_compile=True)
    np.testing.assert_allclose(
        np.asarray(fn(t, s)), expected_kd.reshape(2, -1).mean(axis=1), rtol=1e-5)
    expected_dkd = np.mean([
        numpy_dkd(numpy_standardize(flat(t)[i:i + 1]), numpy_standardize(flat(s)[i:i + 1]),
                  y.reshape(-1)[i:i + 1], 1.0, 8.0, 4.0)
        for i in range(18)
    ])
    got = float(np.mean(losses.dkd_loss(t, s, y, logit_standardization=True)))
    np.testing.assert_allclose(got, expected_dkd, rtol=1e-5)


def test_config_round_trip_keeps_the_flag():
    for term in (losses.KD(logit_standardization=True),
                 losses.DKD(logit_standardization=True)):
        config = term.get_config()
        assert config["logit_standardization"] is True
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
        assert restored.logit_standardization is True
    assert losses.KD().get_config()["logit_standardization"] is False
    with pytest.raises(TypeError, match="logit_standardization"):
        losses.KD(logit_standardization="yes")


def test_docstring_example_runs():
    import doctest

    from keras_kd.losses import logit_standardization as standardization

    result = doctest.testmod(standardization)
    assert result.attempted >= 2 and result.failed == 0
