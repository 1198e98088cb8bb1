"""FitNets hint loss checked against numpy, and the FitNet term in a Distiller."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import fitnet as hints
from tests.helpers.doctests import assert_doctests
from tests.helpers.feature_nets import (
    assert_config_round_trip,
    feature_net,
    fit_two_steps,
    weights_of,
)
from tests.helpers.numpy_reference import numpy_per_sample


def numpy_hint(t, s):
    """Mean over every element of the squared difference."""
    t = np.asarray(t, np.float64)
    s = np.asarray(s, np.float64)
    total = 0.0
    for a, b in zip(t.ravel(), s.ravel()):
        total += (a - b) ** 2
    return total / t.size


def test_hint_loss_matches_numpy():
    rng = np.random.default_rng(0)
    for shape in [(3, 4, 4, 5), (6, 7)]:
        t = rng.normal(size=shape).astype("float32")
        s = rng.normal(size=shape).astype("float32")
        per_sample = np.asarray(losses.hint_loss(t, s))
        assert per_sample.shape == (shape[0],)
        np.testing.assert_allclose(per_sample, numpy_per_sample(numpy_hint, t, s), rtol=1e-5)
        # RepDistiller's HintLoss (nn.MSELoss over the batch) is their mean.
        np.testing.assert_allclose(per_sample.mean(), numpy_hint(t, s), rtol=1e-5)


def test_hint_loss_float16_inputs_compute_in_float32():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(2, 4, 4, 3)).astype("float16")
    s = rng.normal(size=(2, 4, 4, 3)).astype("float16")
    value = losses.hint_loss(t, s)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(value), numpy_per_sample(numpy_hint, t, s), rtol=1e-5)


def test_docstring_examples():
    assert_doctests(hints, {"hint_loss": 4})


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fitnet_trains_in_distiller(jit_compile):
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), name="student")
    if jit_compile:  # a user-given regressor: strided conv 8x8x3 -> 4x4x8
        regressor = keras.layers.Conv2D(8, 3, strides=2, padding="same")
        term = losses.FitNet("relu2", "relu1", regressor=regressor)
    else:  # auto: 1x1 conv 8x8x3 -> 8x8x6
        term = losses.FitNet("relu1", "relu1")
    distiller, _ = fit_two_steps(term, teacher, student, jit_compile=jit_compile)
    assert term.regressor is not None
    assert term.regressor.trainable_weights
    # The regressor trains with the student and is owned by the term.
    assert any(
        w is v for w in distiller.trainable_weights
        for v in term.regressor.trainable_weights
    )


def test_fitnet_regressor_receives_gradients():
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), name="student")
    term = losses.FitNet("relu1", "relu1", regressor="conv3x3")
    distiller = keras_kd.Distiller(teacher, student, [term])
    before = weights_of(term.regressor)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss="sparse_categorical_crossentropy")
    distiller.fit(np.ones((4, 8, 8, 1), "float32"), np.zeros(4), verbose=0)
    after = weights_of(term.regressor)
    assert not np.allclose(before[0], after[0])


def test_fitnet_without_regressor_on_equal_shapes():
    teacher = feature_net(widths=(4, 8), name="teacher")
    student = feature_net(widths=(4, 8), name="student")
    term = losses.FitNet("relu2", "relu2", regressor=None)
    fit_two_steps(term, teacher, student)
    assert term.regressor is None


def test_fitnet_config_round_trip():
    term = losses.FitNet("a", "b", regressor="conv3x3", weight=2.5, name="h1")
    clone = assert_config_round_trip(term)
    assert clone.regressor_kind == "conv3x3"
    assert clone.weight == 2.5
    assert clone.teacher_taps == ("a",) and clone.student_taps == ("b",)
    layer_term = losses.FitNet("a", "b", regressor=keras.layers.Dense(3, name="d"))
    clone = type(layer_term).from_config(layer_term.get_config())
    assert isinstance(clone.regressor_kind, keras.layers.Dense)
    assert clone.regressor_kind.units == 3


def test_fitnet_bad_shapes_raise_clear_errors():
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), name="student")
    with pytest.raises(ValueError, match="relu1.*relu1|regressor"):
        keras_kd.Distiller(teacher, student, [losses.FitNet("relu1", "relu1", regressor=None)])
    # 1x1 regressor cannot change the spatial size (8x8 -> 4x4).
    with pytest.raises(ValueError, match="height and width"):
        keras_kd.Distiller(teacher, student, [losses.FitNet("relu2", "relu1")])
    with pytest.raises(ValueError, match="Unknown regressor"):
        losses.FitNet("relu1", "relu1", regressor="conv5x5")
    with pytest.raises(TypeError, match="layer name"):
        losses.FitNet(3, "relu1")
