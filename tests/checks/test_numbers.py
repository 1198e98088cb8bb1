"""What counts as a number in keras-kd's arguments, and the checks of the
numeric arguments themselves (keras_kd.checks.numbers): NumPy scalars are
numbers, booleans, strings and tensors are not; temperatures and weights
must be finite and in range."""

import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.regimes import schedules
from keras_kd.tools.config import validate as config
from tests.helpers.models import tiny_cnn


@pytest.mark.parametrize("bad", [0.0, -2.0])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        losses.KD(temperature=bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_negative_or_non_finite_weights(bad):
    with pytest.raises(ValueError, match="student_loss_weight"):
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[losses.KD()], student_loss_weight=bad)
    with pytest.raises(ValueError, match="weight"):
        losses.FeatureMSE("relu1", "relu1", weight=bad)


def test_numpy_scalars_are_accepted_wherever_numbers_are():
    kd = losses.KD(temperature=np.int64(4), weight=np.float32(0.5))
    assert kd.temperature == 4.0 and kd.weight == 0.5
    assert isinstance(kd.get_config()["temperature"], float)  # JSON-serializable
    distiller = keras_kd.Distiller(tiny_cnn(16, name="t"), tiny_cnn(8, name="s"), losses=[kd],
                                   student_loss_weight=np.float64(0.1))
    distiller.student_loss_weight = np.float32(0.25)
    assert distiller.student_loss_weight == 0.25
    stage = keras_kd.regimes.Stage(np.int64(2), {"kd": np.float32(1.0)})
    assert stage.epochs == 2 and type(stage.epochs) is int
    assert schedules.get(np.float64(0.3))(0) == pytest.approx(0.3)
    assert schedules.LinearWarmup(np.float32(1.0), np.int32(3))(3) == pytest.approx(1.0)
    assert losses.AttentionTransfer("relu1", "relu1", p=np.int64(2)).p == 2
    checked = config.Checker()
    assert checked.number("epochs", np.int64(3), minimum=1, integer=True) == 3
    assert checked.problems == []


@pytest.mark.parametrize("value", [True, "4", None, np.bool_(True), [4]])
def test_non_numbers_are_still_refused(value):
    with pytest.raises(TypeError, match="must be a number"):
        losses.KD(temperature=value)
    with pytest.raises(TypeError, match="must be a number"):
        losses.KD(weight=value)


def test_tensors_as_temperature_are_refused_but_numpy_0d_arrays_are_numbers():
    with pytest.raises(TypeError, match="must be a number"):
        losses.KD(temperature=tf.Variable(4.0))
    assert losses.KD(temperature=np.array(4.0)).temperature == 4.0
