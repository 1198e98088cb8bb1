"""keras_kd.balance: gradient norms of each part of the objective, and
weights set so a term pulls on the student as hard as the labels (both
backends; the reference is a numpy derivation on a linear student)."""

import keras
import numpy as np
import pytest

from keras_kd import losses
from keras_kd.balance import BalanceWeights, balance_weights, decay_factor, gradient_norms
from keras_kd.distiller import Distiller

T = 3.0


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _linear_pair(seed=0):
    """A linear teacher and a linear student without bias: logits = x·W."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((4,))
    teacher = keras.Model(inputs, keras.layers.Dense(3, use_bias=False, name="t")(inputs))
    inputs = keras.Input((4,))
    student = keras.Model(inputs, keras.layers.Dense(3, use_bias=False, name="s")(inputs))
    teacher.layers[-1].set_weights([rng.normal(size=(4, 3)).astype("float32")])
    student.layers[-1].set_weights([rng.normal(size=(4, 3)).astype("float32") * 0.3])
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.integers(0, 3, size=16)
    return teacher, student, x, y


def _compiled(teacher, student, student_loss_weight=1.0, **kd):
    distiller = Distiller(teacher, student, losses=[losses.KD(temperature=T, **kd)],
                          student_loss_weight=student_loss_weight)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return distiller


def _numpy_norms(teacher, student, x, y):
    """‖∇_W CE‖ and ‖∇_W T²·KL(p_t^T ‖ p_s^T)‖ (batch means), derived by hand:
    ∇_W CE = xᵀ(softmax(xW) − onehot(y))/B, ∇_W KD = xᵀ·T(q − p)/B with
    q = softmax(xW/T), p = softmax(x W_t/T)."""
    w_t = teacher.layers[-1].get_weights()[0].astype(np.float64)
    w_s = student.layers[-1].get_weights()[0].astype(np.float64)
    x = x.astype(np.float64)
    onehot = np.eye(3)[y]
    grad_ce = x.T @ (_softmax(x @ w_s) - onehot) / len(x)
    grad_kd = x.T @ (T * (_softmax(x @ w_s / T) - _softmax(x @ w_t / T))) / len(x)
    return np.linalg.norm(grad_ce), np.linalg.norm(grad_kd)


def test_gradient_norms_match_a_numpy_derivation():
    teacher, student, x, y = _linear_pair()
    distiller = _compiled(teacher, student)
    norms = gradient_norms(distiller, x, y)
    ce, kd = _numpy_norms(teacher, student, x, y)
    assert set(norms) == {"student_loss", "kd"}
    assert norms["student_loss"] == pytest.approx(ce, rel=1e-4)
    assert norms["kd"] == pytest.approx(kd, rel=1e-4)


@pytest.mark.parametrize("ratio, student_loss_weight", [(1.0, 1.0), (0.25, 2.0)])
def test_balance_weights_sets_the_weighted_gradient_ratio(ratio, student_loss_weight):
    teacher, student, x, y = _linear_pair(1)
    distiller = _compiled(teacher, student, student_loss_weight=student_loss_weight)
    chosen = balance_weights(distiller, x, y, ["kd"], ratio=ratio)
    ce, kd = _numpy_norms(teacher, student, x, y)
    expected = ratio * student_loss_weight * ce / kd
    assert chosen == {"kd": pytest.approx(expected, rel=1e-4)}
    (term,) = distiller.distillation_losses
    assert term.weight == pytest.approx(expected, rel=1e-4)
    # The weighted term now pulls `ratio` times as hard as the weighted labels.
    assert term.weight * kd == pytest.approx(ratio * student_loss_weight * ce, rel=1e-4)


def test_gradient_norms_change_no_variable():
    """Training mode would move BatchNormalization's statistics: the
    calibration must leave the run it calibrates exactly as it was."""
    inputs = keras.Input((6,))
    h = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(8, name="d")(inputs))
    student = keras.Model(inputs, keras.layers.Dense(3, name="out")(h))
    inputs = keras.Input((6,))
    teacher = keras.Model(inputs, keras.layers.Dense(3, name="t")(inputs))
    distiller = _compiled(teacher, student)
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(32, 6)).astype("float32")
    y = np.arange(32) % 3
    before = [np.array(v.numpy()) for v in distiller.variables]
    norms = gradient_norms(distiller, x, y)
    assert norms["kd"] > 0 and norms["student_loss"] > 0
    after = [np.array(v.numpy()) for v in distiller.variables]
    for old, new, variable in zip(before, after, distiller.variables):
        np.testing.assert_array_equal(old, new, err_msg=variable.path)


def test_balance_weights_refuses_bad_calls():
    teacher, student, x, y = _linear_pair()
    uncompiled = Distiller(teacher, student, losses=[losses.KD(temperature=T)])
    with pytest.raises(ValueError, match="compile"):
        gradient_norms(uncompiled, x, y)
    teacher, student, x, y = _linear_pair()
    distiller = _compiled(teacher, student)
    with pytest.raises(ValueError, match=r"no term named \['hint'\].*\['kd'\]"):
        balance_weights(distiller, x, y, ["hint"])
    with pytest.raises(ValueError, match="needs labels"):
        balance_weights(distiller, x, None, ["kd"])
    for bad in (0.0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="ratio for term 'kd'"):
            balance_weights(distiller, x, y, {"kd": bad})
    distiller.student_loss_weight = 0.0
    with pytest.raises(ValueError, match="student_loss_weight > 0"):
        balance_weights(distiller, x, y, ["kd"])


def test_balance_weights_callback_sets_and_records_once():
    teacher, student, x, y = _linear_pair(3)
    distiller = _compiled(teacher, student)
    ce, kd = _numpy_norms(teacher, student, x, y)
    record = {"kd": "balanced when fit starts"}
    callback = BalanceWeights(x, y, ["kd"], record=record, record_keys={"kd": "kd"})
    distiller.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert callback.chosen == {"kd": pytest.approx(ce / kd, rel=1e-4)}
    assert record == {"kd": pytest.approx(ce / kd, rel=1e-4)}
    (term,) = distiller.distillation_losses
    term.weight = 7.0
    distiller.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert term.weight == 7.0  # a second fit keeps what the first one set


def test_a_reused_callback_balances_a_new_distiller_and_dict_inputs_work():
    teacher, student, x, y = _linear_pair(4)
    callback = BalanceWeights(x, y, ["kd"])
    first = _compiled(teacher, student)
    first.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    teacher2, student2, _, _ = _linear_pair(5)
    second = _compiled(teacher2, student2)
    ce, kd = _numpy_norms(teacher2, student2, x, y)  # before fit moves the student
    second.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[callback])
    assert second.distillation_losses[0].weight == pytest.approx(ce / kd, rel=1e-4)

    inputs = {"a": keras.Input((2,), name="a"), "b": keras.Input((2,), name="b")}
    joined = keras.layers.Concatenate()([inputs["a"], inputs["b"]])
    t = keras.Model(inputs, keras.layers.Dense(3, name="t")(joined))
    s = keras.Model(inputs, keras.layers.Dense(3, name="s")(joined))
    distiller = _compiled(t, s)
    norms = gradient_norms(distiller, {"a": x[:, :2], "b": x[:, 2:]}, y)
    assert norms["student_loss"] > 0 and norms["kd"] > 0


def test_unrepresentable_weights_and_mismatched_batches_are_refused():
    teacher, student, x, y = _linear_pair()
    distiller = _compiled(teacher, student)
    for ratio in (1e308, 1e-300):  # float32 would hold inf / 0
        with pytest.raises(ValueError, match="outside float32's range"):
            balance_weights(distiller, x, y, {"kd": ratio})
    assert distiller.distillation_losses[0].weight == 1.0  # untouched
    with pytest.raises(ValueError, match=r"different numbers of samples \[3, 5\]"):
        gradient_norms(distiller, x[:3], y[:5])


def test_decay_factor_and_the_decaying_callback():
    assert [decay_factor(None, e, 4) for e in range(4)] == [1.0] * 4
    assert [decay_factor("linear", e, 4) for e in range(4)] == [1.0, 0.75, 0.5, 0.25]
    np.testing.assert_allclose([decay_factor("cosine", e, 4) for e in range(4)],
                               [(1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)])
    with pytest.raises(ValueError, match="decay must be one of"):
        BalanceWeights(np.zeros((2, 4)), np.zeros(2), ["kd"], decay="step")

    teacher, student, x, y = _linear_pair(5)
    distiller = _compiled(teacher, student)
    ce, kd = _numpy_norms(teacher, student, x, y)
    callback = BalanceWeights(x, y, ["kd"], decay="cosine")
    history = distiller.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[callback])
    # Balanced on the untrained student, then decayed epoch by epoch.
    start = ce / kd
    np.testing.assert_allclose(history.history["kd_weight"],
                               [start * (1 + np.cos(np.pi * e / 3)) / 2 for e in range(3)],
                               rtol=1e-4)
    (term,) = distiller.distillation_losses
    assert term.weight == pytest.approx(start * (1 + np.cos(2 * np.pi / 3)) / 2, rel=1e-4)
