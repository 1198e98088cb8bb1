"""MLKD against a float64 numpy port of the authors' code (`kd_loss`,
`cc_loss`, `bc_loss` and `forward_train` of `KD_ours` in
Jin-Ying/Multi-Level-Logit-Distillation, and `MLKD` of
sunshangquan/logit-standardization-KD), its student gradient against finite
differences, and the term in a Distiller on the TensorFlow and JAX backends."""

import doctest

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses, zoo
from keras_kd.losses import mlkd as mlkd_module
from keras_kd.losses import registry

AUTHORS = (4.0, 3.0, 5.0, 2.0, 6.0)


def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _normalize(logit):
    """The LS repo's `normalize`: torch's std is unbiased; eps on the std."""
    mean = logit.mean(axis=-1, keepdims=True)
    stdv = logit.std(axis=-1, ddof=1, keepdims=True)
    return (logit - mean) / (1e-7 + stdv)


def kd_loss(logits_student, logits_teacher, temperature, logit_stand=False):
    if logit_stand:
        logits_student, logits_teacher = _normalize(logits_student), _normalize(logits_teacher)
    log_pred_student = np.log(_softmax(logits_student / temperature))
    pred_teacher = _softmax(logits_teacher / temperature)
    kl = pred_teacher * (np.log(pred_teacher) - log_pred_student)
    return kl.sum(1).mean() * temperature**2


def cc_loss(logits_student, logits_teacher, temperature):
    class_num = logits_teacher.shape[1]
    pred_student = _softmax(logits_student / temperature)
    pred_teacher = _softmax(logits_teacher / temperature)
    student_matrix = pred_student.T @ pred_student
    teacher_matrix = pred_teacher.T @ pred_teacher
    return ((teacher_matrix - student_matrix) ** 2).sum() / class_num


def bc_loss(logits_student, logits_teacher, temperature):
    batch_size = logits_teacher.shape[0]
    pred_student = _softmax(logits_student / temperature)
    pred_teacher = _softmax(logits_teacher / temperature)
    student_matrix = pred_student @ pred_student.T
    teacher_matrix = pred_teacher @ pred_teacher.T
    return ((teacher_matrix - student_matrix) ** 2).sum() / batch_size


def numpy_mlkd(s, t, temperatures=AUTHORS, logit_stand=False):
    """The method on one view: Σ_T kd + cc + bc, as the authors' functions."""
    s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
    return sum(kd_loss(s, t, T, logit_stand) + cc_loss(s, t, T) + bc_loss(s, t, T)
               for T in temperatures)


def _masks(t_weak, percentile):
    pred_teacher_weak = _softmax(t_weak)
    confidence = pred_teacher_weak.max(axis=1)
    mask = confidence <= np.percentile(confidence, percentile)
    class_confidence = pred_teacher_weak.sum(axis=0)
    class_conf_mask = class_confidence <= np.percentile(class_confidence, percentile)
    return mask, class_conf_mask


def numpy_weak_parts(s_w, t_w, base=4.0, logit_stand=False, percentile=50):
    """`loss_kd_weak + loss_cc_weak + loss_bc_weak` of `forward_train`
    (kd weight 1): each reduced loss times its mask, then `.mean()`."""
    s_w, t_w = np.asarray(s_w, np.float64), np.asarray(t_w, np.float64)
    mask, class_conf_mask = _masks(t_w, percentile)
    temperatures = (base, 3.0, 5.0, 2.0, 6.0)
    loss_kd_weak = sum((kd_loss(s_w, t_w, T, logit_stand) * mask).mean() for T in temperatures)
    loss_cc_weak = sum((cc_loss(s_w, t_w, T) * class_conf_mask).mean() for T in temperatures)
    loss_bc_weak = sum((bc_loss(s_w, t_w, T) * mask).mean() for T in temperatures)
    return loss_kd_weak + loss_cc_weak + loss_bc_weak


def numpy_forward_train(s_w, s_s, t_w, t_s, base=4.0, logit_stand=False, percentile=50):
    """`loss_kd + loss_cc + loss_bc` of the authors' `forward_train`, kd
    weight 1: `loss_kd_strong` takes the strong view at (base, 3, 5) and,
    as written there, the weak view at 2 and 6."""
    s_w, s_s = np.asarray(s_w, np.float64), np.asarray(s_s, np.float64)
    t_w, t_s = np.asarray(t_w, np.float64), np.asarray(t_s, np.float64)
    loss_kd_strong = (kd_loss(s_s, t_s, base, logit_stand) + kd_loss(s_s, t_s, 3.0, logit_stand)
                      + kd_loss(s_s, t_s, 5.0, logit_stand) + kd_loss(s_w, t_w, 2.0, logit_stand)
                      + kd_loss(s_w, t_w, 6.0, logit_stand))
    return numpy_weak_parts(s_w, t_w, base, logit_stand, percentile) + loss_kd_strong


def _data(seed, n=16, c=10, scale=3.0):
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
    grad = tape.gradient(value, x)
    return np.zeros_like(s) if grad is None else grad.numpy()


def _finite_differences(reference, s, h=1e-6):
    s = np.asarray(s, np.float64)
    grad = np.zeros_like(s)
    for index in np.ndindex(*s.shape):
        up, down = s.copy(), s.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (reference(up) - reference(down)) / (2 * h)
    return grad


@pytest.mark.parametrize("temperatures", [AUTHORS, (1.0, 3.0, 5.0, 2.0, 6.0), (2.0,), (8.0, 0.5)])
def test_mlkd_matches_the_authors_functions(temperatures):
    t, s = _data(0)
    got = float(losses.mlkd_loss(t, s, temperatures=temperatures))
    np.testing.assert_allclose(got, numpy_mlkd(s, t, temperatures), rtol=1e-5)


def test_each_level_is_normalised_as_the_authors():
    """One temperature, the parts one at a time: the instance part is T²·mean
    KL, the class part a C×C sum over C, the batch part a B×B sum over B."""
    t, s = _data(1, n=6, c=4)
    T = 3.0
    total = float(losses.mlkd_loss(t, s, temperatures=(T,)))
    parts = [kd_loss(s, t, T), cc_loss(s, t, T), bc_loss(s, t, T)]
    np.testing.assert_allclose(total, sum(parts), rtol=1e-5)
    # Doubling the batch (the same rows twice) keeps the instance part,
    # multiplies the class matrices by 2 (4× their squares, /C) and holds the
    # batch matrix four times (4× the squares, /2B: 2× the batch part).
    doubled = float(losses.mlkd_loss(np.tile(t, (2, 1)), np.tile(s, (2, 1)), temperatures=(T,)))
    np.testing.assert_allclose(doubled, parts[0] + 4 * parts[1] + 2 * parts[2], rtol=1e-5)


def test_logit_standardization_applies_to_the_instance_parts_only():
    """As the LS repo's MLKD: `kd_loss` normalizes, `cc_loss`/`bc_loss` do not.
    Their command: base temperature 2, i.e. (2, 3, 5, 2, 6)."""
    t, s = _data(2)
    temperatures = (2.0, 3.0, 5.0, 2.0, 6.0)
    got = float(losses.mlkd_loss(t, s, temperatures=temperatures, logit_standardization=True))
    np.testing.assert_allclose(got, numpy_mlkd(s, t, temperatures, logit_stand=True), rtol=1e-5)
    both = sum(kd_loss(s, t, T, True) + cc_loss(_normalize(s), _normalize(t), T)
               + bc_loss(_normalize(s), _normalize(t), T) for T in temperatures)
    assert got != pytest.approx(both, rel=1e-3)


@pytest.mark.parametrize("n, percentile", [(16, 50.0), (15, 50.0), (16, 30.0)])
def test_confidence_masks_weight_the_weak_view_as_the_authors_code(n, percentile):
    t, s = _data(3, n=n)
    got = float(losses.mlkd_loss(t, s, confidence_percentile=percentile))
    np.testing.assert_allclose(got, numpy_weak_parts(s, t, percentile=percentile), rtol=1e-5)
    # The masks act through the fraction they keep (the losses are reduced
    # before the masks multiply them): about p/100 of the unmasked value.
    mask, class_mask = _masks(t, percentile)
    assert 0 < mask.mean() < 1 and 0 < class_mask.mean() < 1
    assert got < float(losses.mlkd_loss(t, s))


@pytest.mark.parametrize("logit_stand, base", [(False, 4.0), (True, 2.0)])
def test_weak_strong_views_reproduce_forward_train(logit_stand, base):
    t_w, s_w = _data(4)
    rng = np.random.default_rng(5)
    t_s = (t_w + rng.normal(scale=2.0, size=t_w.shape)).astype("float32")
    s_s = (s_w + rng.normal(scale=2.0, size=s_w.shape)).astype("float32")
    t, s = np.concatenate([t_w, t_s]), np.concatenate([s_w, s_s])
    temperatures = (base, 3.0, 5.0, 2.0, 6.0)
    got = float(losses.mlkd_loss(t, s, temperatures, logit_standardization=logit_stand,
                                 confidence_percentile=50, weak_strong=True))
    want = numpy_forward_train(s_w, s_s, t_w, t_s, base, logit_stand, percentile=50)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Without masks: the weak view's full loss plus the strong instance parts.
    unmasked = float(losses.mlkd_loss(t, s, temperatures, logit_standardization=logit_stand,
                                      weak_strong=True))
    strong = want - numpy_weak_parts(s_w, t_w, base, logit_stand)
    np.testing.assert_allclose(unmasked, numpy_mlkd(s_w, t_w, temperatures, logit_stand)
                               + strong, rtol=1e-5)


@pytest.mark.parametrize("kwargs, reference", [
    ({}, lambda s, t: numpy_mlkd(s, t)),
    ({"logit_standardization": True, "temperatures": (2.0, 3.0)},
     lambda s, t: numpy_mlkd(s, t, (2.0, 3.0), logit_stand=True)),
    ({"confidence_percentile": 50, "weak_strong": True},
     lambda s, t: numpy_forward_train(s[:3], s[3:], t[:3], t[3:])),
])
def test_student_gradient_matches_finite_differences(kwargs, reference):
    t, s = _data(6, n=6, c=5, scale=2.0)
    got = _student_gradient(lambda a, b: losses.mlkd_loss(a, b, **kwargs), t, s)
    numeric = _finite_differences(lambda x: reference(x, t.astype(np.float64)), s)
    np.testing.assert_allclose(got, numeric, rtol=2e-3, atol=2e-6)


def test_the_teacher_gets_no_gradient_and_equal_logits_give_zero():
    t, _ = _data(7)
    np.testing.assert_allclose(float(losses.mlkd_loss(t, t)), 0.0, atol=1e-6)
    grad = _student_gradient(lambda a, b: losses.mlkd_loss(b, a), t, t.copy() + 1.0)
    np.testing.assert_array_equal(grad, 0.0)


def test_the_term_ignores_sample_weight_and_trains(digits_batch):
    """A batch-level loss: the batch's sample_weight does not apply (as DIST).
    One step on the current backend (TensorFlow, and JAX in the JAX pass)."""
    x, y = digits_batch
    x, y = x[:16], y[:16]
    teacher, student = zoo.mlp(hidden=(64,), name="teacher"), zoo.digits_student()
    term = losses.MLKD(weight=0.9)
    distiller = keras_kd.Distiller(teacher, student, losses=[term], student_loss_weight=0.1)
    distiller.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    t = keras.ops.convert_to_numpy(teacher(x))
    s = keras.ops.convert_to_numpy(student(x))
    expected = numpy_mlkd(s, t)
    weights = np.linspace(0.0, 2.0, 16).astype("float32")
    for sample_weight in (None, weights):
        parts = distiller.compute_distillation_loss(
            {"logits": t}, {"logits": s}, y, sample_weight=sample_weight)[1]
        np.testing.assert_allclose(float(parts["mlkd"]), expected, rtol=1e-5)
    before = [np.array(w) for w in student.get_weights()]
    logs = distiller.train_on_batch(x, y, return_dict=True)  # logs the value before the update
    np.testing.assert_allclose(logs["mlkd"], expected, rtol=1e-4)
    assert any(not np.allclose(a, b) for a, b in zip(before, student.get_weights()))


def test_two_stacked_views_train_in_a_distiller(digits_batch):
    """The documented layout: weak views in the first half of each batch,
    strong views in the second, labels repeated."""
    x, y = digits_batch
    x, y = x[:8], y[:8]
    strong = np.clip(x + np.random.default_rng(8).normal(scale=0.3, size=x.shape), 0, 1)
    x2 = np.concatenate([x, strong.astype("float32")])
    y2 = np.concatenate([y, y])
    teacher, student = zoo.mlp(hidden=(64,), name="teacher"), zoo.digits_student()
    term = losses.MLKD(weak_strong=True, confidence_percentile=50, weight=0.9)
    distiller = keras_kd.Distiller(teacher, student, losses=[term], student_loss_weight=0.2)
    distiller.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    t = keras.ops.convert_to_numpy(teacher(x2))
    s = keras.ops.convert_to_numpy(student(x2))
    before = [np.array(w) for w in student.get_weights()]
    # fit(..., shuffle=False) with batch_size=16 runs the same step; shuffling
    # rows would break the pairing of the views.
    logs = distiller.train_on_batch(x2, y2, return_dict=True)
    np.testing.assert_allclose(logs["mlkd"], numpy_forward_train(s[:8], s[8:], t[:8], t[8:]),
                               rtol=1e-4)
    assert any(not np.allclose(a, b) for a, b in zip(before, student.get_weights()))


def test_config_round_trip_and_registry():
    assert registry.get("MLKD") is losses.MLKD
    assert losses.MLKD().temperatures == AUTHORS
    term = losses.MLKD(temperatures=[2, 3, 5, 2, 6], logit_standardization=True,
                       confidence_percentile=50, weak_strong=True, weight=9.0, name="m")
    config = keras.saving.serialize_keras_object(term)
    assert "ignore_index" not in config["config"]
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, losses.MLKD) and restored.get_config() == term.get_config()
    assert restored.temperatures == (2.0, 3.0, 5.0, 2.0, 6.0)
    assert (restored.logit_standardization, restored.confidence_percentile,
            restored.weak_strong, restored.name) == (True, 50.0, True, "m")
    assert restored.weight == pytest.approx(9.0)


def test_bad_input_raises():
    t = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match="at least one temperature"):
        losses.MLKD(temperatures=())
    with pytest.raises(TypeError, match="sequence of numbers"):
        losses.mlkd_loss(t, t, temperatures=4.0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        losses.MLKD(temperatures=(4.0, 0.0))
    with pytest.raises(ValueError, match=r"confidence_percentile must be in \[0, 100\]"):
        losses.MLKD(confidence_percentile=150)
    with pytest.raises(TypeError, match="has no ignore_index"):
        losses.MLKD(ignore_index=255)
    with pytest.raises(TypeError, match="weak_strong must be True or False"):
        losses.MLKD(weak_strong=1)
    with pytest.raises(ValueError, match="2B rows\\); got 3 rows"):
        losses.mlkd_loss(t[:3], t[:3], weak_strong=True)
    with pytest.raises(ValueError, match="Dense logits and position masks are not supported"):
        losses.mlkd_loss(np.zeros((2, 4, 4, 3)), np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="and a mask"):
        losses.mlkd_loss(t, t, mask=np.ones(4))


def test_docstring_values_and_doctest():
    t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    assert round(numpy_mlkd(s, t), 4) == 4.7267
    assert round(numpy_mlkd(s, t, (2.0,)), 4) == 0.9889
    found = {test.name.rsplit(".", 1)[-1]: len(test.examples)
             for test in doctest.DocTestFinder().find(mlkd_module)}
    assert found.get("mlkd_loss", 0) >= 4, found
    result = doctest.testmod(mlkd_module)
    assert result.attempted >= 4 and result.failed == 0


def test_xla_compiles_the_masks_and_both_views():
    import tensorflow as tf

    t, s = _data(9)
    kwargs = {"confidence_percentile": 50, "weak_strong": True, "logit_standardization": True}
    xla = tf.function(lambda a, b: losses.mlkd_loss(a, b, **kwargs), jit_compile=True)
    want = numpy_forward_train(s[:8], s[8:], t[:8], t[8:], logit_stand=True)
    np.testing.assert_allclose(float(xla(t, s)), want, rtol=1e-5)


def test_mlkd_and_wttm_train_under_mixed_float16(digits_batch):
    keras.config.set_dtype_policy("mixed_float16")
    x, y = digits_batch
    x, y = x[:16], y[:16]
    teacher, student = zoo.mlp(hidden=(64,), name="teacher"), zoo.digits_student()
    terms = [losses.MLKD(), losses.WTTM(gamma=0.2)]
    distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    t = keras.ops.convert_to_numpy(teacher(x)).astype(np.float32)
    s = keras.ops.convert_to_numpy(student(x)).astype(np.float32)
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["mlkd"], numpy_mlkd(s, t), rtol=2e-2)
    p_t = _softmax(t) ** 0.2
    norm = p_t.sum(axis=1)
    p_t = p_t / norm[:, None]
    wttm = (norm * (p_t * (np.log(p_t) - np.log(_softmax(s)))).sum(axis=1)).mean()
    np.testing.assert_allclose(logs["wttm"], wttm, rtol=2e-2)
