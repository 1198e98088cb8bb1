"""RKD, PKT and SP checked against numpy written from RepDistiller's
definitions, and the terms in a Distiller; batches of one sample give exactly 0."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.losses import pkt, rkd, sp
from tests.helpers.doctests import assert_doctests
from tests.helpers.feature_nets import assert_config_round_trip, feature_net, fit_two_steps
from tests.helpers.graphs import value_and_gradient as _value_and_gradient


def _flat(x):
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], -1)


def _smooth_l1(a, b):
    d = np.abs(a - b)
    return np.where(d < 1.0, 0.5 * d * d, d - 0.5).mean()


def numpy_rkd(teacher, student, w_d=25.0, w_a=50.0):
    def distances(e):
        n = len(e)
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if i != j:
                    sq = ((e[i] - e[j]) ** 2).sum()
                    d[i, j] = math.sqrt(max(sq, 1e-12))
        return d / d[d > 0].mean()

    def angles(e):
        n = len(e)
        a = np.zeros((n, n, n))
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    u, v = e[j] - e[i], e[k] - e[i]
                    u = u / max(np.linalg.norm(u), 1e-12)
                    v = v / max(np.linalg.norm(v), 1e-12)
                    a[i, j, k] = u @ v
        return a

    t, s = _flat(teacher), _flat(student)
    return (w_d * _smooth_l1(distances(s), distances(t))
            + w_a * _smooth_l1(angles(s), angles(t)))


def numpy_pkt(teacher, student, eps=1e-7):
    def probabilities(x):
        n = len(x)
        x = np.stack([row / (np.linalg.norm(row) + eps) for row in x])
        k = np.array([[(x[i] @ x[j] + 1.0) / 2.0 for j in range(n)] for i in range(n)])
        return k / k.sum(axis=1, keepdims=True)

    t, s = probabilities(_flat(teacher)), probabilities(_flat(student))
    return (t * np.log((t + eps) / (s + eps))).mean()


def numpy_sp(teacher, student):
    def similarity(f):
        g = f @ f.T
        return np.stack([row / max(np.linalg.norm(row), 1e-12) for row in g])

    t, s = _flat(teacher), _flat(student)
    n = len(t)
    return ((similarity(t) - similarity(s)) ** 2).sum() / (n * n)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(6, 2, 2, 3)).astype("float32"),  # teacher, rank 4
            rng.normal(size=(6, 5)).astype("float32"))        # student, rank 2


def test_rkd_matches_numpy(features):
    t, s = features
    np.testing.assert_allclose(float(losses.rkd_loss(t, s)), numpy_rkd(t, s), rtol=1e-5)
    np.testing.assert_allclose(
        float(losses.rkd_loss(t, s, distance_weight=1.0, angle_weight=0.0)),
        numpy_rkd(t, s, 1.0, 0.0), rtol=1e-5)
    np.testing.assert_allclose(
        float(losses.rkd_loss(t, s, distance_weight=0.0, angle_weight=2.0)),
        numpy_rkd(t, s, 0.0, 2.0), rtol=1e-5)
    # Large relative differences exercise the linear part of smooth-L1.
    np.testing.assert_allclose(
        float(losses.rkd_loss(t, s * np.arange(1, 7)[:, None] ** 2)),
        numpy_rkd(t, s * np.arange(1, 7)[:, None] ** 2), rtol=1e-5)


def test_pkt_matches_numpy(features):
    t, s = features
    np.testing.assert_allclose(float(losses.pkt_loss(t, s)), numpy_pkt(t, s), rtol=1e-5)
    np.testing.assert_allclose(
        float(losses.pkt_loss(t, s, eps=1e-3)), numpy_pkt(t, s, 1e-3), rtol=1e-5)


def test_sp_matches_numpy(features):
    t, s = features
    np.testing.assert_allclose(float(losses.sp_loss(t, s)), numpy_sp(t, s), rtol=1e-5)


def test_gradients_stay_finite_on_degenerate_batches():
    # Duplicated samples (zero distances) and all-zero samples: the sqrt and
    # normalisations must not produce NaN gradients.
    s = tf.constant(np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [3.0, -1.0]],
                             "float32"))
    t = tf.constant(np.random.default_rng(1).normal(size=(4, 3)).astype("float32"))
    for fn in (losses.rkd_loss, losses.pkt_loss, losses.sp_loss):
        with tf.GradientTape() as tape:
            tape.watch(s)
            value = fn(t, s)
        grad = tape.gradient(value, s).numpy()
        assert np.isfinite(float(value)), fn.__name__
        assert np.all(np.isfinite(grad)), fn.__name__


def test_float16_inputs_compute_in_float32(features):
    t, s = features
    for fn, ref in ((losses.rkd_loss, numpy_rkd), (losses.pkt_loss, numpy_pkt),
                    (losses.sp_loss, numpy_sp)):
        value = fn(t.astype("float16"), s.astype("float16"))
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        np.testing.assert_allclose(
            float(value), ref(t.astype("float16"), s.astype("float16")), rtol=1e-4)


def test_docstring_examples():
    assert_doctests(pkt, {"pkt_loss": 3})
    assert_doctests(rkd, {"rkd_loss": 3})
    assert_doctests(sp, {"sp_loss": 3})


def test_terms_match_functions(features):
    t, s = features
    cases = [(losses.RKD("t", "s", distance_weight=2.0, angle_weight=3.0),
              numpy_rkd(t, s, 2.0, 3.0)),
             (losses.PKT("t", "s"), numpy_pkt(t, s)),
             (losses.SP("t", "s"), numpy_sp(t, s))]
    for term, expected in cases:
        term.build({"t": (None, 2, 2, 3)}, {"s": (None, 5)})
        np.testing.assert_allclose(float(term({"t": t}, {"s": s})), expected, rtol=1e-5)
    assert [c[0].weight for c in cases] == [1.0, 30000.0, 3000.0]


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("make_term", [
    lambda: losses.RKD("embed", "embed"),
    lambda: losses.PKT("gap", "gap"),
    lambda: losses.SP("relu2", "relu1"),
], ids=["rkd", "pkt", "sp"])
def test_relational_terms_train_in_distiller(jit_compile, make_term):
    teacher = feature_net(widths=(6, 8), embed=5, name="teacher")
    student = feature_net(widths=(3, 4), embed=2, name="student")
    # Non-zero on the first batch, reaches the student, decreases.
    fit_two_steps(make_term(), teacher, student, jit_compile=jit_compile)


def test_config_round_trip():
    rkd = assert_config_round_trip(
        losses.RKD("a", "b", distance_weight=1.0, angle_weight=2.0, weight=0.5))
    assert (rkd.distance_weight, rkd.angle_weight, rkd.weight) == (1.0, 2.0, 0.5)
    pkt = assert_config_round_trip(losses.PKT("a", "b", eps=1e-5, name="pkt2"))
    assert pkt.eps == 1e-5 and pkt.name == "pkt2"
    sp = assert_config_round_trip(losses.SP("a", "b", weight=1.0))
    assert sp.teacher_taps == ("a",) and sp.student_taps == ("b",)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="distance_weight"):
        losses.RKD("a", "b", distance_weight=-1.0)
    with pytest.raises(ValueError, match="eps"):
        losses.PKT("a", "b", eps=0.0)
    with pytest.raises(TypeError, match="layer name"):
        losses.SP(None, "b")
    term = losses.SP("t", "s")
    with pytest.raises(ValueError, match="rank >= 2"):
        term.build({"t": (None,)}, {"s": (None, 3)})


# Batches too small to compare (1 sample): exactly 0 with zero gradients, also
# compiled with a dynamic batch; a final batch of 1 keeps the epoch finite.
RELATIONAL = [
    (losses.rkd_loss, numpy_rkd),
    (losses.pkt_loss, numpy_pkt),
    (losses.sp_loss, numpy_sp),
]


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("fn,reference", RELATIONAL, ids=["rkd", "pkt", "sp"])
def test_one_sample_gives_exactly_zero_and_zero_gradients(fn, reference, jit_compile):
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(1, 2, 2, 3)).astype("float32")
    student = rng.normal(size=(1, 5)).astype("float32")
    value, grad = _value_and_gradient(fn, teacher, student, jit_compile)
    assert value == 0.0
    assert np.all(grad == 0.0)
    # Two samples are compared as before (the guard does not zero them).
    teacher = rng.normal(size=(2, 2, 2, 3)).astype("float32")
    student = rng.normal(size=(2, 5)).astype("float32")
    value, grad = _value_and_gradient(fn, teacher, student, jit_compile)
    np.testing.assert_allclose(value, reference(teacher, student), rtol=1e-5, atol=1e-12)
    assert np.all(np.isfinite(grad))


def test_final_batch_of_one_sample_keeps_the_epoch_finite():
    teacher = feature_net(widths=(6, 8), embed=5, name="teacher")
    student = feature_net(widths=(3, 4), embed=2, name="student")
    terms = [losses.RKD("embed", "embed"), losses.PKT("gap", "gap"),
             losses.SP("relu2", "relu1"), losses.DIST()]
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(9, 8, 8, 1)).astype("float32")  # batches 4, 4, 1
    y = rng.integers(0, 3, size=(9,))
    distiller = keras_kd.Distiller(teacher, student, losses=terms)
    distiller.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss="sparse_categorical_crossentropy")
    history = distiller.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history
    for name in ("rkd", "pkt", "sp", "dist", "loss"):
        assert np.isfinite(history[name][-1]), name
    assert history["rkd"][-1] > 0
