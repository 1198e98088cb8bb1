"""Overhaul (Heo et al. 2019) checked against numpy/scipy, and the term in a
Distiller."""

import math

import keras
import numpy as np
import pytest
from keras import layers

import keras_kd
from keras_kd import losses
from keras_kd.losses import overhaul
from keras_kd.losses import overhaul as overhaul_margins
from tests.helpers.doctests import assert_doctests
from tests.helpers.feature_nets import (
    assert_config_round_trip,
    feature_net,
    fit_two_steps,
    randomize_batchnorm,
    randomize_bn_layer,
    weights_of,
)
from tests.helpers.numpy_reference import numpy_per_sample


def numpy_margin(gamma, beta):
    """The official get_margin_from_BN, with Φ written through math.erf."""
    def cdf(x):
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    out = []
    for g, m in zip(gamma, beta):
        s, m = abs(float(g)), float(m)
        if cdf(-m / s) > 0.001:
            pdf = math.exp(-((m / s) ** 2) / 2) / math.sqrt(2 * math.pi)
            out.append(-s * pdf / cdf(-m / s) + m)
        else:
            out.append(-3 * s)
    return np.array(out)


def numpy_partial_l2(t, s):
    t = np.asarray(t, np.float64)
    s = np.asarray(s, np.float64)
    total = 0.0
    for a, b in zip(t.ravel(), s.ravel()):
        if b > a or a > 0:
            total += (b - a) ** 2
    return total / t.shape[0]


def _margin_inputs():
    rng = np.random.default_rng(0)
    gamma = rng.normal(size=40) * 2
    beta = rng.normal(size=40) * 3
    beta[:3] = [10.0, 5.0, -4.0]  # Φ(−m/s) tiny -> −3s branch; large negative
    return gamma, beta


def test_margin_matches_the_official_code_with_scipy():
    norm = pytest.importorskip("scipy.stats").norm
    gamma, beta = _margin_inputs()
    # get_margin_from_BN of the official repository, which uses scipy.
    official = [
        (-abs(g) * math.exp(-(m / abs(g)) ** 2 / 2) / math.sqrt(2 * math.pi)
         / norm.cdf(-m / abs(g)) + m) if norm.cdf(-m / abs(g)) > 0.001 else -3 * abs(g)
        for g, m in zip(gamma, beta)
    ]
    np.testing.assert_allclose(
        losses.overhaul_margin(gamma, beta), official, rtol=1e-5, atol=1e-6)


def test_margin_matches_numpy():
    gamma, beta = _margin_inputs()
    got = losses.overhaul_margin(gamma, beta)
    assert got.dtype == np.float32 and got.shape == (40,)
    np.testing.assert_allclose(got, numpy_margin(gamma, beta), rtol=1e-5, atol=1e-6)
    assert got[0] == pytest.approx(-3 * abs(gamma[0]), rel=1e-6)
    # A standard normal: E[x | x < 0] = −φ(0)/Φ(0) = −0.7979.
    assert losses.overhaul_margin([1.0], [0.0])[0] == pytest.approx(-0.797885, rel=1e-5)
    # All margins are negative expectations of the negative part.
    assert np.all(got < 0)
    # γ = 0: a constant channel.
    np.testing.assert_allclose(losses.overhaul_margin([0.0, 0.0], [-2.0, 1.0]), [-2.0, 0.0])


def test_margin_relu_and_partial_l2_match_numpy():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(3, 4, 4, 5)).astype("float32")
    s = rng.normal(size=(3, 4, 4, 5)).astype("float32")
    margin = -rng.uniform(0.1, 1.0, size=5).astype("float32")
    transformed = np.asarray(losses.margin_relu(t, margin))
    np.testing.assert_allclose(transformed, np.maximum(t, margin[None, None, None]))
    per_sample = np.asarray(losses.partial_l2_loss(transformed, s))
    np.testing.assert_allclose(
        per_sample, numpy_per_sample(numpy_partial_l2, transformed, s), rtol=1e-5)
    # The official sum / batch size is their batch mean.
    np.testing.assert_allclose(per_sample.mean(), numpy_partial_l2(transformed, s), rtol=1e-5)
    half = losses.partial_l2_loss(transformed.astype("float16"), s.astype("float16"))
    assert keras.backend.standardize_dtype(half.dtype) == "float32"


def test_docstring_examples():
    assert_doctests(overhaul, {"partial_l2_loss": 4})
    assert_doctests(overhaul_margins, {"margin_relu": 2, "overhaul_margin": 2})


def _models():
    teacher = randomize_batchnorm(feature_net(widths=(6, 8), name="teacher"))
    student = feature_net(widths=(3, 4), name="student")
    return teacher, student


def test_prepare_finds_batchnorm_and_taps_pre_relu():
    teacher, student = _models()
    term = losses.Overhaul(["relu1", "relu2"], ["relu1", "bn2"])
    assert term.teacher_taps == ("relu1:input", "relu2:input")
    term.prepare(teacher, student)
    # A ReLU is tapped at its input, another layer at its output.
    assert term.student_taps == ("relu1:input", "bn2")
    for i, bn_name in enumerate(["bn1", "bn2"]):
        bn = teacher.get_layer(bn_name)
        expected = numpy_margin(np.array(bn.gamma), np.array(bn.beta))
        np.testing.assert_allclose(term.margins[i], expected, rtol=1e-5, atol=1e-6)
    assert term.stage_weights == [0.5, 1.0]


def test_term_value_matches_numpy():
    teacher, student = _models()
    randomize_batchnorm(student, seed=1)
    term = losses.Overhaul(["relu1", "relu2"], ["relu1", "relu2"])
    term.prepare(teacher, student)
    x = np.random.default_rng(2).uniform(size=(3, 8, 8, 1)).astype("float32")
    t_view = keras_kd.taps.ModelView(teacher, term.teacher_taps)
    s_view = keras_kd.taps.ModelView(student, term.student_taps)
    term.build(t_view.shapes, s_view.shapes)
    rng = np.random.default_rng(3)
    for bn in term.connector_bns:  # non-trivial inference statistics
        randomize_bn_layer(bn, rng)
    t_out, s_out = t_view(x), s_view(x)
    got = keras.ops.convert_to_numpy(term(t_out, s_out, training=False))
    assert got.shape == (3,)

    expected = 0.0
    for i, (t_tap, s_tap) in enumerate(zip(term.teacher_taps, term.student_taps)):
        t = keras.ops.convert_to_numpy(t_out[t_tap]).astype(np.float64)
        s = keras.ops.convert_to_numpy(s_out[s_tap]).astype(np.float64)
        bn = teacher.get_layer(f"bn{i + 1}")
        margin = numpy_margin(np.array(bn.gamma), np.array(bn.beta))
        (kernel,) = weights_of(term.connector_convs[i])
        gamma, beta, mean, var = weights_of(term.connector_bns[i])
        conv = np.einsum("bhwc,cd->bhwd", s, kernel[0, 0])
        connected = (conv - mean) / np.sqrt(var + 1e-5) * gamma + beta
        expected += 2.0 ** -(1 - i) * numpy_per_sample(
            numpy_partial_l2, np.maximum(t, margin), connected)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("mode", ["graph", "jit_mixed"])
def test_overhaul_trains_in_distiller(mode):
    if mode == "jit_mixed":
        keras.config.set_dtype_policy("mixed_float16")  # restored by conftest
    teacher, student = _models()
    term = losses.Overhaul(["relu1", "relu2"], ["relu1", "relu2"])
    term.prepare(teacher, student)
    margins = [m.copy() for m in term.margins]
    before = []

    def keep_connectors(distiller):
        before.extend(weights_of(c)[0] for c in term.connector_convs)

    fit_two_steps(term, teacher, student, jit_compile=(mode == "jit_mixed"),
                  before_fit=keep_connectors)
    # The connectors train with the student; the margins are constants.
    after = [weights_of(c)[0] for c in term.connector_convs]
    assert len(before) == 2
    assert all(not np.allclose(b, a) for b, a in zip(before, after))
    for kept, now in zip(margins, term.margins):
        np.testing.assert_array_equal(kept, now)
    assert all(not v.trainable for v in term.margin_variables)


def test_config_round_trip():
    term = losses.Overhaul(["r1", "r2:input"], ["s1", "s2"], weight=0.01,
                           teacher_bn_train_mode=True, bn_layers=["b1", "b2"],
                           name="ofd")
    clone = assert_config_round_trip(term)
    assert clone.teacher_layers == ["r1", "r2"]
    assert clone.teacher_bn_train_mode is True
    assert clone.bn_layers == ["b1", "b2"]
    assert clone.weight == pytest.approx(0.01)


def test_explicit_bn_layers_for_a_relu_without_bn_in_front():
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    bn = layers.BatchNormalization(name="bn1")(x)
    x = layers.Add(name="add")([bn, x])
    x = layers.Activation("relu", name="relu1")(x)
    outputs = layers.Dense(3, name="logits")(layers.GlobalAveragePooling2D()(x))
    teacher = randomize_batchnorm(keras.Model(inputs, outputs))
    student = feature_net(widths=(3,), strides=(1,), name="student")
    with pytest.raises(ValueError, match="bn_layers"):
        losses.Overhaul("relu1", "relu1").prepare(teacher, student)
    term = losses.Overhaul("relu1", "relu1", bn_layers="bn1")
    term.prepare(teacher, student)
    bn_layer = teacher.get_layer("bn1")
    np.testing.assert_allclose(
        term.margins[0], numpy_margin(np.array(bn_layer.gamma), np.array(bn_layer.beta)),
        rtol=1e-5, atol=1e-6)


def test_bad_layers_and_shapes_raise_clear_errors():
    teacher, student = _models()
    with pytest.raises(ValueError, match="'conv1' is a Conv2D, not a ReLU"):
        losses.Overhaul("conv1", "relu1").prepare(teacher, student)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        losses.Overhaul("nope", "relu1").prepare(teacher, student)
    with pytest.raises(ValueError, match="one to one"):
        losses.Overhaul(["relu1", "relu2"], ["relu1"])
    # Stage shapes 8x8 (teacher) vs 4x4 (student) cannot be connected by 1x1.
    term = losses.Overhaul("relu1", "relu2")
    term.prepare(teacher, student)
    with pytest.raises(ValueError, match="height and width"):
        keras_kd.Distiller(teacher, student, [term])
    # Building without prepare says what to do.
    term = losses.Overhaul("relu1", "relu1")
    with pytest.raises(ValueError, match="prepare"):
        term.build({"relu1:input": (None, 8, 8, 6)}, {"relu1:input": (None, 8, 8, 3)})


def test_reloaded_term_builds_before_prepare_and_restores_margins():
    # Loading a saved distiller deserializes (and builds) the term before the
    # Distiller exists: it must build without prepare, with the saved taps,
    # and get its margins back from the saved weights.
    teacher, student = _models()
    term = losses.Overhaul(["relu1", "relu2"], ["relu1", "bn2"])
    term.prepare(teacher, student)
    t_view = keras_kd.taps.ModelView(teacher, term.teacher_taps)
    s_view = keras_kd.taps.ModelView(student, term.student_taps)
    term.build(t_view.shapes, s_view.shapes)
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(term))
    assert again.built
    assert again.student_taps == ("relu1:input", "bn2")
    assert all(np.all(m == 0) for m in again.margins)  # placeholders
    again.set_weights(term.get_weights())
    for saved, restored in zip(term.margins, again.margins):
        np.testing.assert_array_equal(saved, restored)
    # prepare on a built term recomputes the margins from the teacher.
    fresh = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(term))
    fresh.prepare(teacher, student)
    for expected, got in zip(term.margins, fresh.margins):
        np.testing.assert_allclose(got, expected, rtol=1e-6)
