"""Feature terms return one value per sample, and the Distiller weights
those values with the batch's sample_weight (checked against numpy)."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import feature_mse as features
from tests.helpers.feature_nets import feature_net
from tests.helpers.numpy_reference import numpy_per_sample


def numpy_feature_mse(t, s):
    t = np.asarray(t, np.float64)
    s = np.asarray(s, np.float64)
    return ((t - s) ** 2).sum() / t.size


def test_feature_mse_loss_matches_numpy_element_by_element():
    rng = np.random.default_rng(0)
    for shape in [(4, 3, 3, 2), (5, 7)]:
        t = rng.normal(size=shape).astype("float32")
        s = (rng.normal(size=shape) * np.arange(1, shape[0] + 1).reshape((-1,) + (1,) * (len(shape) - 1))).astype("float32")
        got = np.asarray(features.feature_mse_loss(t, s))
        expected = numpy_per_sample(numpy_feature_mse, t, s)
        assert len(set(np.round(expected, 3))) == shape[0]  # distinct per sample
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_distiller_weights_a_feature_term_per_sample():
    teacher = feature_net(widths=(4, 8), name="teacher")
    student = feature_net(widths=(4, 8), name="student")
    term = losses.FeatureMSE("relu2", "relu2", adapter=None)
    distiller = keras_kd.Distiller(teacher, student, losses=[term], student_loss_weight=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(6, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, size=(6,))
    weights = np.array([0.0, 3.0, 1.0, 0.0, 0.5, 2.0], "float32")
    # The step runs the teacher in inference mode and the student in
    # training mode (BN on batch statistics).
    t_map = keras.ops.convert_to_numpy(keras_kd.taps.ModelView(teacher, ["relu2"])(x)["relu2"])
    s_map = keras.ops.convert_to_numpy(keras_kd.taps.ModelView(student, ["relu2"])(x, training=True)["relu2"])
    per_sample = numpy_per_sample(numpy_feature_mse, t_map, s_map)
    logs = distiller.train_on_batch(x, y, sample_weight=weights, return_dict=True)
    expected = (per_sample * weights).sum() / len(x)
    assert logs["feature_mse"] == pytest.approx(expected, rel=1e-4)
    # Unweighted, it is the plain mean: the weights above do change it.
    assert abs(expected - per_sample.mean()) > 0.05 * per_sample.mean()
    logs = distiller.train_on_batch(x, y, return_dict=True)
    assert logs["feature_mse"] == pytest.approx(per_sample.mean(), rel=1e-4)
