"""Batch-dependent terms (RKD, PKT, SP, DIST) on batches too small to
compare: exactly 0, finite gradients, also compiled with a dynamic batch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.feature_nets import feature_net
from tests.losses.test_dist import numpy_dist
from tests.losses.test_relational import numpy_pkt, numpy_rkd, numpy_sp

RELATIONAL = [
    (losses.rkd_loss, numpy_rkd),
    (losses.pkt_loss, numpy_pkt),
    (losses.sp_loss, numpy_sp),
]


def _value_and_gradient(fn, teacher, student, jit_compile):
    spec = [tf.TensorSpec((None,) + teacher.shape[1:]), tf.TensorSpec((None,) + student.shape[1:])]

    @tf.function(input_signature=spec, jit_compile=jit_compile)
    def step(t, s):
        with tf.GradientTape() as tape:
            tape.watch(s)
            value = fn(t, s)
        return value, tape.gradient(value, s)

    value, grad = step(tf.constant(teacher), tf.constant(student))
    return float(value), grad.numpy()


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


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dist_one_sample_drops_only_the_intra_class_term(jit_compile):
    rng = np.random.default_rng(1)
    teacher = rng.normal(scale=3.0, size=(1, 6)).astype("float32")
    student = rng.normal(scale=3.0, size=(1, 6)).astype("float32")
    intra_only = lambda t, s: losses.dist_loss(t, s, beta=0.0, gamma=1.0, temperature=4.0)  # noqa: E731
    value, grad = _value_and_gradient(intra_only, teacher, student, jit_compile)
    assert value == 0.0 and np.all(grad == 0.0)
    both = lambda t, s: losses.dist_loss(t, s, beta=1.0, gamma=1.0, temperature=4.0)  # noqa: E731
    value, grad = _value_and_gradient(both, teacher, student, jit_compile)
    inter_only = numpy_dist(student, teacher, beta=1.0, gamma=0.0, tau=4.0)
    np.testing.assert_allclose(value, inter_only, rtol=1e-5)
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_dist_one_valid_pixel_and_no_valid_pixel():
    rng = np.random.default_rng(2)
    t = rng.normal(scale=3.0, size=(2, 2, 2, 4)).astype("float32")
    s = rng.normal(scale=3.0, size=(2, 2, 2, 4)).astype("float32")
    one = np.zeros((2, 2, 2), "float32")
    one[1, 0, 1] = 1.0
    np.testing.assert_allclose(
        float(losses.dist_loss(t, s, mask=one)),
        numpy_dist(s[1:, 0, 1], t[1:, 0, 1], 1.0, 0.0), rtol=1e-5)
    assert float(losses.dist_loss(t, s, mask=np.zeros((2, 2, 2)))) == 0.0


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
