"""Ensemble teachers and ensemble_logits, checked against numpy and in real fits."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses, teachers
from keras_kd.taps.views import ModelView
from tests.helpers.distillers import X, Y, fit as _fit, kd_distiller as _distiller
from tests.helpers.models import tiny_cnn
from tests.helpers.numpy_logits import log_softmax as _log_softmax, numpy_kd


# ----------------------------------------------------------------------
# numpy references written from the formulas.
def numpy_ensemble_probs(logits_list, mode, weights, temperature):
    """The ensemble's soft targets at T (probabilities)."""
    n = len(logits_list)
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    probs = [np.exp(_log_softmax(z / temperature)) for z in logits_list]
    if mode == "mean":
        return sum(wi * p for wi, p in zip(w, probs))
    g = np.prod([p**wi for wi, p in zip(w, probs)], axis=0)
    return g / g.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------
# ensemble_logits.
@pytest.mark.parametrize("mode", ["mean", "geometric"])
@pytest.mark.parametrize("weights,temperature", [(None, 1.0), ([1.0, 3.0, 0.5], 4.0), (None, 20.0)])
def test_ensemble_logits_match_numpy(mode, weights, temperature):
    rng = np.random.default_rng(0)
    logits = [rng.normal(scale=4.0, size=(8, 10)).astype("float32") for _ in range(3)]
    out = keras.ops.convert_to_numpy(teachers.ensemble_logits(logits, mode, weights, temperature)).astype(np.float64)
    expected = numpy_ensemble_probs(logits, mode, weights, temperature)
    np.testing.assert_allclose(np.exp(_log_softmax(out / temperature)), expected, rtol=1e-5)
    # out / T is already a normalised log-probability.
    np.testing.assert_allclose(np.exp(out / temperature), expected, rtol=1e-5)


def test_ensemble_logits_docstring_and_single_teacher():
    a = np.log(np.array([[0.8, 0.2]]))
    b = np.log(np.array([[0.4, 0.6]]))
    np.testing.assert_allclose(np.exp(keras.ops.convert_to_numpy(teachers.ensemble_logits([a, b]))), [[0.6, 0.4]], rtol=1e-6)
    z = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    out = keras.ops.convert_to_numpy(teachers.ensemble_logits([z], temperature=2.0))
    np.testing.assert_allclose(_log_softmax(out / 2.0), _log_softmax(z / 2.0), rtol=1e-5, atol=1e-6)


def test_ensemble_logits_float16_inputs_give_float32():
    rng = np.random.default_rng(2)
    logits = [rng.normal(scale=8.0, size=(4, 10)).astype("float16") for _ in range(2)]
    out = teachers.ensemble_logits(logits, temperature=4.0)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    expected = numpy_ensemble_probs([z.astype("float32") for z in logits], "mean", None, 4.0)
    np.testing.assert_allclose(np.exp(np.asarray(out, np.float64) / 4.0), expected, rtol=1e-5)


# ----------------------------------------------------------------------
# The Ensemble model.
def test_ensemble_model_output_and_taps_match_the_teachers():
    t1, t2 = tiny_cnn(8, name="t1"), tiny_cnn(6, name="t2")
    ensemble = teachers.Ensemble([t1, t2], mode="geometric", weights=[2.0, 1.0], temperature=3.0)
    x = np.random.default_rng(3).random((4, 8, 8, 1)).astype("float32")
    out = keras.ops.convert_to_numpy(ensemble(x))
    expected = numpy_ensemble_probs([keras.ops.convert_to_numpy(t1(x)), keras.ops.convert_to_numpy(t2(x))], "geometric", [2, 1], 3.0)
    np.testing.assert_allclose(np.exp(out / 3.0), expected, rtol=1e-5)
    view = ModelView(ensemble, ["t1/relu2", "t2/relu2:input", "t2/gap"])
    taps = view(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(taps["logits"]), out, rtol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(taps["t1/relu2"]), keras.ops.convert_to_numpy(ModelView(t1, ["relu2"])(x)["relu2"]), rtol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(taps["t2/relu2:input"]),
        keras.ops.convert_to_numpy(ModelView(t2, ["relu2:input"])(x)["relu2:input"]),
        rtol=1e-6,
    )
    assert "t1/relu2" in ensemble.tap_names() and "t2/conv1:input" in ensemble.tap_names()
    assert ensemble.teacher_names == ["t1", "t2"] and ensemble.teachers == [t1, t2]
    # The teachers themselves are untouched: still tappable on their own.
    assert ModelView(t1, ["relu1"]).shapes["relu1"] == (None, 8, 8, 8)


def test_dict_names_address_the_taps():
    t1, t2 = tiny_cnn(8, name="same"), tiny_cnn(8, name="same")
    with pytest.raises(ValueError, match="share the name"):
        teachers.Ensemble([t1, t2])
    ensemble = teachers.Ensemble({"a": t1, "b": t2})
    assert ensemble.get_layer("b/relu1").output.shape == (None, 8, 8, 8)
    with pytest.raises(ValueError, match=r"No layer 'b/nope'.*tappable layers.*relu1"):
        ensemble.get_layer("b/nope")
    with pytest.raises(ValueError, match=r"Teachers: \['a', 'b'\]"):
        ensemble.get_layer("c/relu1")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_two_teacher_ensemble_drives_kd_and_taps_in_one_pass(digits_batch, jit_compile):
    x, y = digits_batch
    x, y = x[:16], y[:16]
    t1, t2 = tiny_cnn(8, name="t1", counter=True), tiny_cnn(8, name="t2", counter=True)
    ensemble = teachers.Ensemble([t1, t2], temperature=4.0)
    student = tiny_cnn(4, name="student", counter=True)
    terms = [
        losses.KD(temperature=4.0),
        losses.FeatureMSE("t2/relu2", "relu2", adapter="auto", name="hint"),
    ]
    distiller = keras_kd.Distiller(ensemble, student, losses=terms, student_loss_weight=0.5)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    history = distiller.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    for model in (t1, t2, student):  # 2 steps, each model once per step
        assert float(model.get_layer("counter").count.numpy()) == 2.0, model.name
    assert history["kd"][0] > 0 and history["hint"][0] > 0
    # The KD term sees the ensemble's averaged soft targets.
    _, parts = distiller.compute_distillation_loss(
        distiller.teacher_view(x), distiller.student_view(x), y, training=False
    )
    s = keras.ops.convert_to_numpy(student(x))
    expected_t = np.log(numpy_ensemble_probs([keras.ops.convert_to_numpy(t1(x)), keras.ops.convert_to_numpy(t2(x))], "mean", None, 4.0)) * 4.0
    np.testing.assert_allclose(float(parts["kd"]), numpy_kd(expected_t, s, 4.0), rtol=1e-4, atol=1e-6)


def test_ensemble_distiller_saves_and_resumes(digits_batch, tmp_path):
    x, y = digits_batch
    x, y = x[:8], y[:8]
    ensemble = teachers.Ensemble([tiny_cnn(8, name="t1"), tiny_cnn(6, name="t2")], temperature=2.0)
    distiller = keras_kd.Distiller(
        ensemble, tiny_cnn(4, name="student"),
        losses=[losses.KD(2.0), losses.FeatureMSE("t1/relu2", "relu2", adapter="auto", name="hint")],
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    distiller.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "d.keras")
    distiller.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.teacher, teachers.Ensemble)
    assert restored.teacher.temperature == 2.0 and restored.teacher.teacher_names == ["t1", "t2"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored.teacher(x)), keras.ops.convert_to_numpy(ensemble(x)), rtol=1e-6)
    a = distiller.fit(x, y, epochs=1, verbose=0).history
    b = restored.fit(x, y, epochs=1, verbose=0).history
    for key in ("kd", "hint", "loss"):
        assert b[key][0] == pytest.approx(a[key][0], rel=1e-5), key


def test_ensemble_under_mixed_float16(digits_batch):
    keras.config.set_dtype_policy("mixed_float16")
    x, y = digits_batch
    ensemble = teachers.Ensemble([tiny_cnn(8, name="t1"), tiny_cnn(8, name="t2")], temperature=4.0)
    assert keras.backend.standardize_dtype(ensemble(x[:2]).dtype) == "float32"
    student = tiny_cnn(4, name="student")
    distiller = keras_kd.Distiller(ensemble, student, losses=[losses.KD(4.0)], student_loss_weight=0.0)
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = [w.numpy().copy() for w in student.trainable_weights]
    kd = distiller.fit(x[:8], y[:8], verbose=0).history["kd"][0]
    assert np.isfinite(kd) and kd > 0
    # KD alone (student loss weight 0) moved the float16 student.
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, student.trainable_weights))


# ----------------------------------------------------------------------
# Ensemble errors.
class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(10)

    def call(self, x):
        return self.dense(keras.ops.reshape(x, (-1, 64)))


def test_ensemble_validation_errors():
    t1 = tiny_cnn(8, name="t1")
    with pytest.raises(ValueError, match=r"teacher 'wide' takes inputs of shape \(None, 9, 9, 1\).*'t1' takes \(None, 8, 8, 1\)"):
        teachers.Ensemble([t1, tiny_cnn(8, name="wide", input_shape=(9, 9, 1))])
    with pytest.raises(ValueError, match=r"teacher 'five' outputs logits of shape \(None, 5\).*Merged"):
        teachers.Ensemble([t1, tiny_cnn(8, classes=5, name="five")])
    inputs = keras.Input((8, 8, 1))
    soft = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)), name="soft")
    with pytest.raises(ValueError, match="'soft' ends in a softmax"):
        teachers.Ensemble([t1, soft])
    with pytest.raises(TypeError, match="'sub' is a subclassed"):
        teachers.Ensemble([t1, Subclassed(name="sub")])
    with pytest.raises(TypeError, match="not a keras.Model"):
        teachers.Ensemble([t1, "t2"])
    with pytest.raises(ValueError, match="at least one"):
        teachers.Ensemble([])
    with pytest.raises(ValueError, match="Unknown ensemble mode"):
        teachers.Ensemble([t1], mode="median")
    with pytest.raises(ValueError, match="2 weights for 1 teachers"):
        teachers.Ensemble([t1], weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="must be > 0"):
        teachers.Ensemble([t1, tiny_cnn(8, name="t2")], weights=[1.0, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        teachers.Ensemble([t1, tiny_cnn(8, name="t2")], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="temperature"):
        teachers.Ensemble([t1], temperature=0)


# ----------------------------------------------------------------------
# Docstrings (with losses/merged_kd's).
def test_docstring_examples_run():
    from tests.helpers.doctests import assert_doctests

    from keras_kd.losses import merged_kd as merged
    from keras_kd.teachers import ensemble

    assert_doctests(ensemble, {"ensemble_logits": 4})
    assert_doctests(merged, {"merged_kd_loss": 5})


# ----------------------------------------------------------------------
# An ensemble in a compiled Distiller.
def test_an_ensemble_teacher_trains_saves_and_reloads(tmp_path):
    ensemble = teachers.Ensemble([tiny_cnn(16, name="t1"), tiny_cnn(12, name="t2")])
    distiller = _distiller(teacher=ensemble)
    assert _fit(distiller, X, Y)["kd"][0] > 0
    path = str(tmp_path / "ensemble.keras")
    distiller.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(X, verbose=0), distiller.predict(X, verbose=0), atol=1e-6)


def test_an_ensemble_of_one_teacher_twice_is_refused():
    teacher = tiny_cnn(16, name="t1")
    with pytest.raises(ValueError, match="share the name"):
        teachers.Ensemble([teacher, teacher])
