"""CWD against a numpy port of the authors' code (TorchDistiller
CriterionCWD(norm_type="channel", divergence="kl"); mmrazor
ChannelWiseDivergence)."""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.losses import cwd


def numpy_cwd(preds_s, preds_t, tau):
    """mmrazor ChannelWiseDivergence.forward on NCHW, float64."""
    s = np.transpose(np.asarray(preds_s, np.float64), (0, 3, 1, 2))
    t = np.transpose(np.asarray(preds_t, np.float64), (0, 3, 1, 2))
    n, c, h, w = s.shape

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    t_rows = t.reshape(-1, h * w) / tau
    s_rows = s.reshape(-1, h * w) / tau
    softmax_t = np.exp(log_softmax(t_rows))
    loss = np.sum(softmax_t * log_softmax(t_rows) - softmax_t * log_softmax(s_rows)) * tau**2
    return loss / (c * n)


def _maps(seed, shape=(3, 4, 5, 6)):
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=2.0, size=shape).astype("float32"),
            rng.normal(scale=2.0, size=shape).astype("float32"))


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_cwd_matches_authors_code_per_sample(tau):
    t, s = _maps(0)
    per_sample = np.asarray(losses.cwd_loss(t, s, tau))
    expected = [numpy_cwd(s[i:i + 1], t[i:i + 1], tau) for i in range(3)]
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5)
    # The authors' loss is their batch mean.
    np.testing.assert_allclose(per_sample.mean(), numpy_cwd(s, t, tau), rtol=1e-5)


def test_cwd_term_in_a_distiller_with_sample_weight_and_xla():
    def net(name):
        inputs = keras.Input((4, 5, 1))
        return keras.Model(inputs, keras.layers.Conv2D(6, 1, name="head")(inputs), name=name)

    teacher, student = net("teacher"), net("student")
    distiller = keras_kd.Distiller(teacher, student, losses=[losses.CWD(temperature=2.0)],
                                   student_loss_weight=0.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=True)
    x = np.random.default_rng(1).normal(size=(3, 4, 5, 1)).astype("float32")
    t = np.asarray(teacher.predict(x, verbose=0))
    s = np.asarray(student.predict(x, verbose=0))
    weights = np.array([2.0, 0.0, 1.0], "float32")
    per_sample = np.array([numpy_cwd(s[i:i + 1], t[i:i + 1], 2.0) for i in range(3)])
    parts = distiller.compute_distillation_loss({"logits": t}, {"logits": s}, sample_weight=weights)[1]
    np.testing.assert_allclose(float(parts["cwd"]), (per_sample * weights).sum() / 3, rtol=1e-5)
    y = np.zeros((3, 4, 5), "int32")
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["cwd"], per_sample.mean(), rtol=1e-4)


def test_gradient_reaches_the_student_only():
    t, s = _maps(2)
    t, s = tf.constant(t), tf.constant(s)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([t, s])
        value = tf.reduce_mean(losses.cwd_loss(t, s, 4.0))
    assert tape.gradient(value, t) is None
    grad = tape.gradient(value, s).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_shape_errors_and_config():
    t, s = _maps(3)
    with pytest.raises(ValueError, match="same height, width and channels"):
        losses.cwd_loss(t, s[:, :2])
    term = losses.CWD("t_head", "s_head")
    with pytest.raises(ValueError, match="t_head"):
        term.build({"t_head": (None, 4, 5, 6)}, {"s_head": (None, 4, 5, 3)})
    term = losses.CWD(temperature=4.0, weight=5.0, name="c")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
    assert (restored.temperature, restored.name) == (4.0, "c")
    assert restored.weight == pytest.approx(5.0)


def test_docstring_examples():
    t = np.zeros((1, 2, 2, 1), "float32")
    t[0, 0, 0, 0] = 2.0
    assert round(numpy_cwd(np.zeros((1, 2, 2, 1)), t, 1.0), 4) == 0.468
    result = doctest.testmod(cwd)
    assert result.attempted >= 2 and result.failed == 0
