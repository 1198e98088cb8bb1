"""Bad input is refused before training with a message naming the fix."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from tests.helpers.models import tiny_cnn


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed_student")
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(10)

    def call(self, x):
        return self.dense(self.flatten(x))


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


def test_unknown_tap_lists_the_layers():
    with pytest.raises(ValueError) as error:
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[losses.FeatureMSE("relu9", "relu1")])
    assert "Unknown tap 'relu9' on the teacher" in str(error.value)
    assert "'conv1'" in str(error.value) and "'relu2'" in str(error.value)


def test_taps_on_a_subclassed_model_explain_functional():
    student = Subclassed()
    student(np.zeros((1, 8, 8, 1)))
    with pytest.raises(TypeError, match="Functional"):
        keras_kd.Distiller(tiny_cnn(), student, losses=[losses.FeatureMSE("relu1", "dense")])


def test_subclassed_student_works_for_logit_terms(digits_batch):
    x, y = digits_batch
    student = Subclassed()
    student(x[:1])
    distiller = keras_kd.Distiller(tiny_cnn(), student, losses=[losses.KD()])
    before = [w.numpy().copy() for w in student.trainable_weights]
    history = distiller.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy"
    ).fit(x, y, batch_size=16, verbose=0)
    assert history.history["kd"][0] > 0
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, student.trainable_weights))


def test_unbuilt_sequential_says_how_to_build():
    unbuilt = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match="not built"):
        keras_kd.Distiller(tiny_cnn(), unbuilt, losses=[losses.FeatureMSE("relu1", "dense")])


def test_sequential_models_can_be_tapped(digits_batch):
    x, y = digits_batch
    student = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", name="conv1"),
        keras.layers.ReLU(name="relu1"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, name="logits"),
    ])
    distiller = keras_kd.Distiller(
        tiny_cnn(), student, losses=[losses.KD(), losses.FeatureMSE("relu1", "relu1")]
    )
    teacher_relu1 = keras.Model(distiller.teacher.input, distiller.teacher.get_layer("relu1").output)
    student_relu1 = keras.Model(student.inputs, student.get_layer("relu1").output)
    expected = np.mean((np.asarray(teacher_relu1(x), np.float64)
                        - np.asarray(student_relu1(x), np.float64)) ** 2)
    history = distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(
        x, y, batch_size=32, verbose=0  # one step: the logged value is the first batch's
    )
    assert history.history["feature_mse"][0] == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-4


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


def test_a_string_or_keras_loss_where_a_term_is_expected():
    with pytest.raises(TypeError, match="not a keras_kd.losses.DistillationLoss"):
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[keras.losses.KLDivergence()])
    with pytest.raises(TypeError, match="losses must be a DistillationLoss"):
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses="kd")


def test_term_needing_labels_fed_unlabeled_data(digits_batch):
    x, _ = digits_batch

    class NeedsLabels(losses.KD):
        requires_labels = True

    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(), losses=[NeedsLabels(name="needs_labels")])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="'needs_labels'.*needs labels"):
        distiller.fit(x, batch_size=16, verbose=0)


def test_different_feature_shapes_without_adapter_name_the_fix():
    with pytest.raises(ValueError) as error:
        keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.FeatureMSE("relu2", "relu2")])
    message = str(error.value)
    assert "(None, 8, 8, 32)" in message and "(None, 8, 8, 16)" in message
    assert "adapter='auto'" in message


def test_softmax_head_is_refused_for_logit_terms():
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(keras.layers.Flatten()(inputs))
    student = keras.Model(inputs, outputs, name="probs_student")
    with pytest.raises(ValueError, match="ends in a softmax.*'probs'"):
        keras_kd.Distiller(tiny_cnn(16), student, losses=[losses.KD()])


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
