"""DKD and NKD, the terms that read the labels, together: gradients, bad
inputs, configs, training in a Distiller, docstring examples."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.regimes.schedules import LossWeightScheduler
from tests.helpers.models import tiny_cnn
from tests.helpers.numpy_logits import logit_data as _data, numpy_dkd, numpy_nkd


def test_gradients_flow_to_the_student_only():
    import tensorflow as tf

    t, s, y = _data(7, n=4, c=5)
    t, s = tf.constant(t), tf.constant(s)
    for fn in (losses.dkd_loss, losses.nkd_loss):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([t, s])
            value = tf.reduce_mean(fn(t, s, y))
        assert tape.gradient(value, t) is None
        grad = tape.gradient(value, s).numpy()
        assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


# ----------------------------------------------------------------------
# Errors.
@pytest.mark.parametrize("fn", [losses.dkd_loss, losses.nkd_loss])
def test_bad_inputs_raise(fn):
    t, s, y = _data(8, n=4, c=5)
    with pytest.raises(ValueError, match="temperature"):
        fn(t, s, y, temperature=0.0)
    with pytest.raises(ValueError, match="labels"):
        fn(t, s, None)
    with pytest.raises(ValueError, match="Labels must be"):
        fn(t, s, np.zeros((4, 3), "int32"))
    with pytest.raises(ValueError, match="same number of classes"):
        fn(t[:, :4], s, y)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="alpha"):
        losses.DKD(alpha=-1.0)
    with pytest.raises(ValueError, match="beta"):
        losses.DKD(beta=float("nan"))
    with pytest.raises(ValueError, match="warmup_epochs"):
        losses.DKD(warmup_epochs=-2)
    with pytest.raises(ValueError, match="gamma"):
        losses.NKD(gamma=-0.1)
    with pytest.raises(ValueError, match="temperature"):
        losses.NKD(temperature=-1)


# ----------------------------------------------------------------------
# Classes.
def test_config_round_trip():
    dkd = losses.DKD(alpha=2.0, beta=4.0, temperature=3.0, warmup_epochs=5, weight=0.5, name="d")
    dkd.weight = 0.1  # mid-warm-up value: the config keeps the target
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(dkd))
    assert isinstance(restored, losses.DKD)
    assert (restored.alpha, restored.beta, restored.temperature) == (2.0, 4.0, 3.0)
    assert restored.warmup_epochs == 5 and restored.name == "d"
    assert restored.target_weight == pytest.approx(0.5)
    nkd = losses.NKD(temperature=2.0, gamma=0.7, weight=0.3, name="n")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(nkd))
    assert isinstance(restored, losses.NKD)
    assert (restored.temperature, restored.gamma, restored.name) == (2.0, 0.7, "n")
    assert restored.weight == pytest.approx(0.3)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_terms_train_in_a_distiller(digits_batch, jit_compile):
    x, y = digits_batch
    x, y = x[:16], y[:16]
    teacher = tiny_cnn(8, name="teacher")
    student = tiny_cnn(4, name="student")
    terms = [losses.DKD(warmup_epochs=4), losses.NKD(temperature=2.0)]
    distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=1.0)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    history = distiller.fit(
        x, y, batch_size=8, epochs=2, verbose=0, callbacks=[LossWeightScheduler()]
    ).history
    assert history["dkd_weight"] == pytest.approx([0.25, 0.5])
    for key in ("dkd", "nkd", "loss"):
        assert np.all(np.isfinite(history[key])), key
    # The Distiller's term values equal the authors' formulas (float32 KL of
    # two nearly equal untrained models: absolute tolerance for the T² · KL).
    t = np.asarray(teacher.predict(x[8:], verbose=0))
    s = np.asarray(student.predict(x[8:], verbose=0))
    parts = distiller.compute_distillation_loss({"logits": t}, {"logits": s}, y[8:])[1]
    np.testing.assert_allclose(float(parts["dkd"]), numpy_dkd(t, s, y[8:], 1.0, 8.0, 4.0), rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(float(parts["nkd"]), numpy_nkd(t, s, y[8:], 2.0, 1.5), rtol=1e-4, atol=2e-5)


def test_terms_need_labels_in_a_distiller(digits_batch):
    x, _ = digits_batch
    distiller = keras_kd.Distiller(
        tiny_cnn(8, name="teacher"), tiny_cnn(4, name="student"), losses=[losses.NKD()]
    )
    distiller.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="needs labels"):
        distiller.fit(x[:8], batch_size=8, epochs=1, verbose=0)


def test_mixed_float16_distiller_step(digits_batch):
    keras.config.set_dtype_policy("mixed_float16")
    x, y = digits_batch
    distiller = keras_kd.Distiller(
        tiny_cnn(8, name="teacher"),
        tiny_cnn(4, name="student"),
        losses=[losses.DKD(warmup_epochs=0), losses.NKD()],
    )
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = distiller.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["dkd"][0]) and np.isfinite(history["nkd"][0])
    assert history["dkd"][0] > 0 and history["nkd"][0] > 0


def test_docstring_examples_run():
    from keras_kd.losses import dkd, nkd

    from tests.helpers.doctests import assert_doctests

    assert_doctests(dkd, {"dkd_loss": 5})
    assert_doctests(nkd, {"nkd_loss": 5})
