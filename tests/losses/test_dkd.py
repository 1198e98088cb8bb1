"""DKD against a numpy port of the authors' code (mdistiller). DKD and NKD
together (errors, configs, a Distiller): test_dkd_nkd.py."""

import keras
import numpy as np
import pytest

from keras_kd import losses
from tests.helpers.numpy_logits import each_sample, logit_data as _data, numpy_dkd


@pytest.mark.parametrize(
    "alpha,beta,temperature", [(1.0, 8.0, 4.0), (1.0, 0.5, 1.0), (0.0, 2.0, 2.0), (2.0, 0.0, 8.0)]
)
def test_dkd_matches_mdistiller(alpha, beta, temperature):
    t, s, y = _data(0)
    got = np.asarray(losses.dkd_loss(t, s, y, alpha, beta, temperature))
    # T²·KL of two nearly equal binary distributions: a float32 rounding of
    # a log-normalizer (one ulp, ~2e-7 at logits of size 2) moves a small
    # sample's value by about alpha·T²·2e-9 (1.6e-7 on PyTorch's logsumexp
    # for one sample at T = 8, relative 1.01e-5).
    np.testing.assert_allclose(
        got, each_sample(numpy_dkd, t, s, y, alpha, beta, temperature), rtol=1e-5,
        atol=5e-9 * max(alpha, beta) * temperature**2)
    np.testing.assert_allclose(got.mean(), numpy_dkd(t, s, y, alpha, beta, temperature), rtol=1e-5)


def test_dkd_one_hot_and_column_labels_equal_sparse():
    t, s, y = _data(1)
    sparse = np.asarray(losses.dkd_loss(t, s, y))
    one_hot = np.eye(10, dtype="float32")[y]
    np.testing.assert_allclose(np.asarray(losses.dkd_loss(t, s, one_hot)), sparse, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(losses.dkd_loss(t, s, y[:, None])), sparse, rtol=1e-6)


def test_dkd_per_sample_shape_and_docstring_values():
    t, s, y = _data(2, n=6, c=5)
    per_sample = np.asarray(losses.dkd_loss(t, s, y))
    assert per_sample.shape == (6,)
    t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    y = np.array([0, 1])
    expected = each_sample(numpy_dkd, t, s, y, 1.0, 8.0, 4.0)
    np.testing.assert_allclose(np.asarray(losses.dkd_loss(t, s, y)), expected, rtol=1e-5)
    assert np.round(expected, 4).tolist() == [1.3264, 6.884]  # the docstring's values
    assert round(numpy_dkd(t, s, y, 1.0, 8.0, 4.0), 4) == 4.1052  # their mean, mdistiller's


def test_dkd_is_zero_for_identical_logits_and_stable_for_huge_logits():
    t, _, y = _data(3)
    np.testing.assert_allclose(np.asarray(losses.dkd_loss(t, t, y)), 0.0, atol=1e-5)
    # The student's target probability underflows to 0 in float32; mdistiller
    # takes log(0) = -inf there, the logsumexp form stays finite.
    t = np.array([[0.0, 0.0, 0.0]], "float32")
    s = np.array([[-1e4, 0.0, 0.0]], "float32")
    assert np.all(np.isfinite(np.asarray(losses.dkd_loss(t, s, np.array([0]), temperature=1.0))))


def test_dkd_is_exact_for_float16_inputs():
    t, s, y = _data(4, scale=6.0)
    got = losses.dkd_loss(t.astype("float16"), s.astype("float16"), y)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    expected = each_sample(numpy_dkd, t.astype("float16"), s.astype("float16"), y, 1.0, 8.0, 4.0)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_dkd_default_schedule_is_mdistiller_warmup():
    dkd = losses.DKD(warmup_epochs=20, weight=2.0)
    schedule = dkd.default_schedule
    # mdistiller: min(epoch / warmup, 1) with epochs counted from 1.
    for keras_epoch in (0, 1, 9, 19, 20, 100):
        assert schedule(keras_epoch) == pytest.approx(2.0 * min((keras_epoch + 1) / 20, 1.0))
    assert losses.DKD(warmup_epochs=0).default_schedule is None
