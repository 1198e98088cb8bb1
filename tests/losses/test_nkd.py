"""NKD against a numpy port of the authors' code (cls_KD). DKD and NKD
together (errors, configs, a Distiller): test_dkd_nkd.py."""

import numpy as np
import pytest

from keras_kd import losses
from tests.helpers.numpy_logits import each_sample, logit_data as _data, numpy_nkd


@pytest.mark.parametrize("temperature,gamma", [(1.0, 1.5), (2.0, 1.0), (4.0, 0.5)])
def test_nkd_matches_authors_code(temperature, gamma):
    t, s, y = _data(5)
    got = np.asarray(losses.nkd_loss(t, s, y, temperature, gamma))
    np.testing.assert_allclose(got, each_sample(numpy_nkd, t, s, y, temperature, gamma), rtol=1e-5)
    np.testing.assert_allclose(got.mean(), numpy_nkd(t, s, y, temperature, gamma), rtol=1e-5)


def test_nkd_one_hot_labels_and_docstring_value():
    t, s, y = _data(6)
    one_hot = np.eye(10, dtype="float32")[y]
    got = np.asarray(losses.nkd_loss(t, s, one_hot, 2.0))
    np.testing.assert_allclose(got, each_sample(numpy_nkd, t, s, one_hot, 2.0, 1.5), rtol=1e-5)
    t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    expected = each_sample(numpy_nkd, t, s, np.array([0, 1]), 1.0, 1.5)
    assert np.round(expected, 4).tolist() == [1.9582, 3.214]  # the docstring's values
    assert round(numpy_nkd(t, s, np.array([0, 1]), 1.0, 1.5), 4) == 2.5861  # their mean
    per_sample = np.asarray(losses.nkd_loss(t, s, np.array([0, 1])))
    assert per_sample.shape == (2,)
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5)
