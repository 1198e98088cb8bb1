"""What a Distiller is given, checked before anything is built
(keras_kd.checks.models): the models, their shapes against the terms, the
terms' names and adapters; each refusal names the fix."""

import keras
import pytest

import keras_kd
from keras_kd import losses
from tests.helpers.models import tiny_cnn


def test_teacher_or_student_not_a_model():
    with pytest.raises(TypeError, match="teacher must be a keras.Model"):
        keras_kd.Distiller("teacher.keras", tiny_cnn())
    with pytest.raises(TypeError, match="student must be a keras.Model"):
        keras_kd.Distiller(tiny_cnn(), keras.layers.Dense(3))


def test_class_count_mismatch_names_both_shapes():
    teacher, student = tiny_cnn(classes=10, name="t10"), tiny_cnn(classes=5, name="s5")
    with pytest.raises(ValueError) as error:
        keras_kd.Distiller(teacher, student, losses=[losses.KD()])
    message = str(error.value)
    assert "(None, 10)" in message and "(None, 5)" in message
    assert "same classes in the same order" in message


def test_feature_only_terms_accept_a_teacher_from_another_task():
    teacher, student = tiny_cnn(classes=10, name="t10"), tiny_cnn(classes=5, name="s5")
    keras_kd.Distiller(teacher, student, losses=[losses.FeatureMSE("relu1", "relu1", adapter="auto")])


def test_incompatible_input_shapes():
    teacher = tiny_cnn(name="big_input", input_shape=(16, 16, 1))
    with pytest.raises(ValueError, match=r"inputs of shape \[\(16, 16, 1\)\].*Resizing"):
        keras_kd.Distiller(teacher, tiny_cnn(), losses=[losses.KD()])


def test_different_feature_shapes_without_adapter_name_the_fix():
    with pytest.raises(ValueError) as error:
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.FeatureMSE("relu2", "relu2")])
    message = str(error.value)
    assert "(None, 8, 8, 32)" in message and "(None, 8, 8, 16)" in message
    assert "adapter='auto'" in message


def test_duplicate_term_names():
    with pytest.raises(ValueError, match="distinct name"):
        keras_kd.Distiller(
            tiny_cnn(16), tiny_cnn(),
            losses=[losses.FeatureMSE("relu1", "relu1", adapter="auto"),
                    losses.FeatureMSE("relu2", "relu2", adapter="auto")],
        )


def test_same_object_as_teacher_and_student():
    model = tiny_cnn()
    with pytest.raises(ValueError, match="same model object"):
        keras_kd.Distiller(model, model, losses=[losses.KD()])


def test_unknown_adapter_kind():
    with pytest.raises(ValueError, match="Unknown adapter"):
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[losses.FeatureMSE("relu2", "relu2", adapter="linear")])
