"""TTM and WTTM against a float64 numpy port of the authors' code
(zkxufo/TTM `distiller_zoo/ttm.py`, `wttm.py`), their gradients against the
analytic ones (checked by finite differences), and both terms in a Distiller
on the TensorFlow and JAX backends."""

import doctest

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses, zoo
from keras_kd.losses import registry
from keras_kd.losses import ttm as ttm_module

GAMMAS = [0.1, 0.25, 0.5, 1.0, 2.0]


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def numpy_ttm(y_s, y_t, gamma, weighted=False):
    """The authors' TTM/WTTM forward, per sample (before their batch mean):
    p_t = softmax(y_t)^l, norm = Σ p_t, p_t /= norm, KL = Σ p_t (log p_t −
    log_softmax(y_s)); WTTM multiplies by norm. float64."""
    p_t = np.exp(_log_softmax(y_t)) ** gamma
    norm = p_t.sum(axis=-1)
    p_t = p_t / norm[..., None]
    kl = np.where(p_t > 0, p_t * (np.log(np.where(p_t > 0, p_t, 1.0)) - _log_softmax(y_s)),
                  0.0).sum(axis=-1)
    return norm * kl if weighted else kl


def analytic_student_gradient(y_t, y_s, gamma, weighted=False):
    """∂ mean_b loss_b / ∂ s = w_b (softmax(s) − p̃) / B, w_b = Σ p_tᵞ (WTTM) or 1."""
    p_t = np.exp(_log_softmax(y_t)) ** gamma
    norm = p_t.sum(axis=-1, keepdims=True)
    q = np.exp(_log_softmax(y_s))
    weight = norm if weighted else 1.0
    return weight * (q - p_t / norm) / len(y_s)


def _data(seed, n=12, c=10, scale=3.0):
    rng = np.random.default_rng(seed)
    t = rng.normal(scale=scale, size=(n, c)).astype("float32")
    s = (0.5 * t + rng.normal(scale=scale, size=(n, c))).astype("float32")
    return t, s


def _student_gradient(fn, t, s):
    """d fn(t, s) / d s on the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        return keras.ops.convert_to_numpy(jax.jit(jax.grad(lambda x: fn(t, x)))(s))
    if keras.backend.backend() == "torch":
        import torch

        x = torch.tensor(s, requires_grad=True)
        value = fn(t, x)
        if not value.requires_grad:  # no path from the student's logits
            return np.zeros_like(s)
        return torch.autograd.grad(value, x)[0].numpy()
    import tensorflow

    x = tensorflow.constant(s)
    with tensorflow.GradientTape() as tape:
        tape.watch(x)
        value = fn(t, x)
    return tape.gradient(value, x).numpy()


@pytest.mark.parametrize("gamma", GAMMAS)
def test_ttm_and_wttm_match_the_authors_code(gamma):
    t, s = _data(0)
    got = keras.ops.convert_to_numpy(losses.ttm_loss(t, s, gamma))
    assert got.shape == (12,)
    np.testing.assert_allclose(got, numpy_ttm(s, t, gamma), rtol=1e-5, atol=1e-7)
    got = keras.ops.convert_to_numpy(losses.wttm_loss(t, s, gamma))
    np.testing.assert_allclose(got, numpy_ttm(s, t, gamma, weighted=True), rtol=1e-5, atol=1e-7)


def test_the_weight_is_the_power_sum_not_normalised_by_the_batch():
    t, s = _data(1)
    gamma = 0.3
    ratio = keras.ops.convert_to_numpy(losses.wttm_loss(t, s, gamma)) / keras.ops.convert_to_numpy(losses.ttm_loss(t, s, gamma))
    power_sum = (np.exp(_log_softmax(t)) ** gamma).sum(axis=-1)
    np.testing.assert_allclose(ratio, power_sum, rtol=1e-5)
    # 1 <= U < C^(1-γ) for γ < 1: a smoother teacher weighs more.
    assert np.all(power_sum >= 1.0) and np.all(power_sum <= 10 ** (1 - gamma))
    assert ratio.mean() != pytest.approx(1.0, abs=0.05)


def test_gamma_is_a_teacher_only_temperature():
    """TTM = KL(softmax(t·γ) ‖ softmax(s)): the student at T = 1 and no T²,
    unlike KD, where both sides are divided by T and the KL scaled by T²."""
    t, s = _data(2)
    temperature = 4.0
    p = np.exp(_log_softmax(t / temperature))
    expected = (p * (np.log(p) - _log_softmax(s))).sum(axis=-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.ttm_loss(t, s, 1 / temperature)), expected,
                               rtol=1e-5)
    kd = keras.ops.convert_to_numpy(losses.kd_loss(t, s, temperature))
    assert not np.allclose(kd, expected, rtol=1e-2)


@pytest.mark.parametrize("weighted", [False, True])
def test_analytic_gradient_matches_finite_differences(weighted):
    """The reference gradient itself, by central differences in float64."""
    t, s = _data(3, n=3, c=5)
    t, s = t.astype(np.float64), s.astype(np.float64)
    gamma, h = 0.4, 1e-6
    numeric = np.zeros_like(s)
    for index in np.ndindex(*s.shape):
        up, down = s.copy(), s.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (numpy_ttm(up, t, gamma, weighted).mean()
                          - numpy_ttm(down, t, gamma, weighted).mean()) / (2 * h)
    np.testing.assert_allclose(analytic_student_gradient(t, s, gamma, weighted), numeric,
                               rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_student_gradient_matches_the_analytic_one(gamma, weighted):
    t, s = _data(4)
    function = losses.wttm_loss if weighted else losses.ttm_loss
    got = _student_gradient(lambda a, b: keras.ops.mean(function(a, b, gamma)), t, s)
    np.testing.assert_allclose(got, analytic_student_gradient(t, s, gamma, weighted),
                               rtol=1e-4, atol=1e-7)


def test_extreme_logits_stay_finite_and_exact():
    """Logits of scale 200 and γ = 0.01: p_tᵞ is computed in log space."""
    t, s = _data(5, scale=200.0)
    for gamma in (0.01, 1.0):
        for weighted, function in ((False, losses.ttm_loss), (True, losses.wttm_loss)):
            got = keras.ops.convert_to_numpy(function(t, s, gamma))
            assert np.all(np.isfinite(got))
            np.testing.assert_allclose(got, numpy_ttm(s, t, gamma, weighted), rtol=1e-4,
                                       atol=1e-6)
            grad = _student_gradient(lambda a, b: keras.ops.mean(function(a, b, gamma)), t, s)
            assert np.all(np.isfinite(grad))
    # A student equal to the transformed teacher: exactly 0, not rounding noise.
    t, _ = _data(6)
    gamma = 0.25
    np.testing.assert_allclose(keras.ops.convert_to_numpy(losses.ttm_loss(t, gamma * t, gamma)), 0.0, atol=1e-7)


def test_dense_logits_average_over_valid_pixels():
    rng = np.random.default_rng(7)
    t = rng.normal(scale=3.0, size=(2, 3, 4, 5)).astype("float32")
    s = rng.normal(scale=3.0, size=(2, 3, 4, 5)).astype("float32")
    y = rng.integers(0, 5, size=(2, 3, 4)).astype("int32")
    y[0, 0] = 255
    y[1, 1, :3] = -1
    valid = ((y >= 0) & (y != 255)).astype(np.float64)
    for weighted, cls in ((False, losses.TTM), (True, losses.WTTM)):
        pixels = numpy_ttm(s, t, 0.5, weighted)
        expected = (pixels * valid).sum(axis=(1, 2)) / valid.sum(axis=(1, 2))
        function = losses.wttm_loss if weighted else losses.ttm_loss
        np.testing.assert_allclose(keras.ops.convert_to_numpy(function(t, s, 0.5, mask=valid)), expected,
                                   rtol=1e-5)
        term = cls(gamma=0.5, ignore_index=255)
        term.build({"logits": (None, 3, 4, 5)}, {"logits": (None, 3, 4, 5)})
        got = keras.ops.convert_to_numpy(term({"logits": t}, {"logits": s}, labels=y))
        np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("cls, weighted", [(losses.TTM, False), (losses.WTTM, True)])
def test_distiller_weights_samples_and_trains(cls, weighted, digits_batch):
    """One step on the current backend (TensorFlow, and JAX in the JAX pass):
    the logged term is the authors' batch mean, and the batch's
    sample_weight weights each sample as Keras's losses do."""
    x, y = digits_batch
    x, y = x[:16], y[:16]
    teacher, student = zoo.mlp(hidden=(64,), name="teacher"), zoo.digits_student()
    term = cls(gamma=0.25, weight=2.0)
    distiller = keras_kd.Distiller(teacher, student, losses=[term], student_loss_weight=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    t = keras.ops.convert_to_numpy(teacher(x))
    s = keras.ops.convert_to_numpy(student(x))
    per_sample = numpy_ttm(s, t, 0.25, weighted)
    weights = np.linspace(0.0, 2.0, 16).astype("float32")
    parts = distiller.compute_distillation_loss(
        {"logits": t}, {"logits": s}, y, sample_weight=weights)[1]
    np.testing.assert_allclose(float(parts[term.name]), (per_sample * weights).sum() / 16,
                               rtol=1e-5)
    before = [np.array(w) for w in student.get_weights()]
    logs = distiller.train_on_batch(x, y, return_dict=True)  # logs the value before the update
    np.testing.assert_allclose(logs[term.name], per_sample.mean(), rtol=1e-4)
    assert any(not np.allclose(a, b) for a, b in zip(before, student.get_weights()))


def test_config_round_trip_and_registry():
    for cls, gamma in ((losses.TTM, 0.1), (losses.WTTM, 0.2)):
        assert registry.get(cls.__name__) is cls
        assert cls().gamma == gamma  # the authors' README commands
        term = cls(gamma=0.3, weight=4.0, ignore_index=255, name="t")
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
        assert type(restored) is cls and restored.get_config() == term.get_config()
        assert (restored.gamma, restored.ignore_index, restored.name) == (0.3, 255, "t")
        assert restored.weight == pytest.approx(4.0)


def test_bad_arguments_raise():
    t = np.zeros((2, 3))
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
            losses.ttm_loss(t, t, bad)
        with pytest.raises(ValueError, match="WTTM's gamma"):
            losses.WTTM(gamma=bad)
    with pytest.raises(TypeError, match="TTM's gamma must be a number"):
        losses.TTM(gamma="0.1")
    with pytest.raises(ValueError, match="same number of classes"):
        losses.wttm_loss(np.zeros((2, 3)), np.zeros((2, 4)), 0.5)


def test_docstring_values_and_doctest():
    t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    assert [round(v, 4) for v in numpy_ttm(s, t, 0.5)] == [0.1779, 0.5145]
    assert [round(v, 4) for v in numpy_ttm(s, t, 0.5, weighted=True)] == [0.2626, 0.7715]
    found = {test.name.rsplit(".", 1)[-1]: len(test.examples)
             for test in doctest.DocTestFinder().find(ttm_module)}
    assert found.get("ttm_loss", 0) >= 3 and found.get("wttm_loss", 0) >= 3, found
    result = doctest.testmod(ttm_module)
    assert result.attempted >= 6 and result.failed == 0
