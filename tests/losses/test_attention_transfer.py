"""Attention transfer checked against numpy, and the term in a Distiller."""

import math

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import attention_transfer as attention
from tests.helpers.doctests import assert_doctests
from tests.helpers.feature_nets import assert_config_round_trip, feature_net, fit_two_steps
from tests.helpers.numpy_reference import numpy_per_sample, numpy_pool_to_common_size


def numpy_attention_map(f, p=2):
    f = np.asarray(f, np.float64)
    n, h, w, c = f.shape
    out = np.zeros((n, h * w))
    for b in range(n):
        q = np.zeros(h * w)
        for y in range(h):
            for x in range(w):
                q[y * w + x] = sum(abs(f[b, y, x, k]) ** p for k in range(c)) / c
        out[b] = q / max(math.sqrt((q ** 2).sum()), 1e-12)
    return out


def numpy_at_loss(t, s, p=2):
    t, s = numpy_pool_to_common_size(t, s)
    return ((numpy_attention_map(s, p) - numpy_attention_map(t, p)) ** 2).mean()


@pytest.mark.parametrize("p", [1, 2, 3])
def test_attention_map_matches_numpy(p):
    f = np.random.default_rng(0).normal(size=(3, 4, 5, 6)).astype("float32")
    got = np.asarray(losses.attention_map(f, p=p))
    assert got.shape == (3, 20)
    np.testing.assert_allclose(got, numpy_attention_map(f, p), rtol=1e-5, atol=1e-7)


def test_attention_map_of_zeros_is_zero_with_finite_gradient():
    import tensorflow as tf

    x = tf.zeros((2, 3, 3, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(losses.attention_map(x))
    assert float(value) == 0.0
    assert np.all(np.isfinite(tape.gradient(value, x).numpy()))


@pytest.mark.parametrize(
    "t_shape,s_shape",
    [((2, 4, 4, 3), (2, 4, 4, 5)),  # same size, different channels
     ((2, 8, 8, 3), (2, 4, 4, 2)),  # teacher larger: teacher pooled
     ((2, 4, 4, 3), (2, 8, 8, 2)),  # student larger: student pooled
     ((2, 6, 6, 3), (2, 4, 4, 2))],  # not divisible
)
def test_attention_transfer_loss_matches_numpy(t_shape, s_shape):
    rng = np.random.default_rng(1)
    t = rng.normal(size=t_shape).astype("float32")
    s = rng.normal(size=s_shape).astype("float32")
    per_sample = np.asarray(losses.attention_transfer_loss(t, s))
    np.testing.assert_allclose(per_sample, numpy_per_sample(numpy_at_loss, t, s), rtol=1e-5)
    # RepDistiller's at_loss is their batch mean.
    np.testing.assert_allclose(per_sample.mean(), numpy_at_loss(t, s), rtol=1e-5)


def test_float16_inputs_compute_in_float32():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(2, 4, 4, 3)).astype("float16")
    s = rng.normal(size=(2, 4, 4, 3)).astype("float16")
    value = losses.attention_transfer_loss(t, s)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(value), numpy_per_sample(numpy_at_loss, t, s), rtol=1e-5)


def test_docstring_examples():
    assert_doctests(attention, {"attention_map": 3, "attention_transfer_loss": 4})


def test_term_sums_pairs():
    rng = np.random.default_rng(3)
    teacher = {"a": rng.normal(size=(2, 8, 8, 3)), "b": rng.normal(size=(2, 4, 4, 5))}
    student = {"c": rng.normal(size=(2, 8, 8, 2)), "d": rng.normal(size=(2, 4, 4, 4))}
    term = losses.AttentionTransfer(["a", "b"], ["c", "d"])
    assert term.weight == 1000.0
    term.build({k: (None,) + v.shape[1:] for k, v in teacher.items()},
               {k: (None,) + v.shape[1:] for k, v in student.items()})
    got = np.asarray(term(teacher, student))
    assert got.shape == (2,)
    expected = numpy_per_sample(numpy_at_loss, teacher["a"], student["c"]) + numpy_per_sample(
        numpy_at_loss, teacher["b"], student["d"])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_attention_transfer_trains_in_distiller(jit_compile):
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), strides=(2, 1), name="student")
    term = losses.AttentionTransfer(["relu1", "relu2"], ["relu1", "relu2"])
    fit_two_steps(term, teacher, student, jit_compile=jit_compile)


def test_config_round_trip():
    clone = assert_config_round_trip(
        losses.AttentionTransfer("a", "b", p=3, weight=10.0, name="at2")
    )
    assert clone.teacher_layers == ["a"] and clone.student_layers == ["b"]
    assert clone.p == 3 and clone.weight == 10.0


def test_bad_arguments_and_shapes_raise_clear_errors():
    teacher = feature_net(name="teacher")
    student = feature_net(name="student")
    with pytest.raises(ValueError, match="NHWC"):
        keras_kd.Distiller(teacher, student,
                           [losses.AttentionTransfer("gap", "relu1")])
    with pytest.raises(ValueError, match="one to one"):
        losses.AttentionTransfer(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="p must be"):
        losses.AttentionTransfer("a", "b", p=0)
    with pytest.raises(ValueError, match="NHWC"):
        losses.attention_map(np.ones((2, 3)))
