"""Single-pass model views and the batch-statistics teacher; taps on Sequential
and subclassed models, and unknown taps listing the layers."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.taps.views import ModelView, with_batch_statistics
from tests.helpers.models import tiny_cnn


def test_view_returns_logits_outputs_and_inputs_from_one_pass(digits_batch):
    x, _ = digits_batch
    model = tiny_cnn(8, counter=True)
    view = ModelView(model, ["relu1", "relu1:input", "conv2"], role="student")
    counter = model.get_layer("counter").count
    counter.assign(0.0)
    out = view(x, training=False)
    assert float(counter.numpy()) == 1.0  # every output from one run of the model
    assert set(out) == {"logits", "relu1", "relu1:input", "conv2"}
    numpy = keras.ops.convert_to_numpy
    np.testing.assert_allclose(numpy(out["logits"]), numpy(model(x, training=False)), atol=1e-6)
    bn_out = numpy(keras.Model(model.input, model.get_layer("bn1").output)(x, training=False))
    np.testing.assert_allclose(numpy(out["relu1:input"]), bn_out, atol=1e-6)
    np.testing.assert_allclose(numpy(out["relu1"]), np.maximum(bn_out, 0), atol=1e-6)
    assert view.shapes["conv2"] == (None, 8, 8, 16)


def _bn_numpy(pre, gamma, beta, eps=1e-3):
    mean, var = pre.mean(axis=(0, 1, 2)), pre.var(axis=(0, 1, 2))
    return (pre - mean) / np.sqrt(var + eps) * gamma + beta


def test_batch_statistics_copy_normalizes_with_the_batch_and_moves_nothing(digits_batch):
    x, _ = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    teacher.get_layer("bn1").moving_mean.assign(np.full(16, 5.0, "float32"))
    copy = with_batch_statistics(teacher)
    pre = keras.ops.convert_to_numpy(keras.Model(teacher.input, teacher.get_layer("conv1").output)(x))
    bn = teacher.get_layer("bn1")
    expected = _bn_numpy(pre, bn.gamma.numpy(), bn.beta.numpy(), bn.epsilon)
    got = keras.ops.convert_to_numpy(keras.Model(copy.input, copy.get_layer("bn1").output)(x, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(copy.get_layer("bn1").moving_mean.numpy(), np.full(16, 5.0))


def test_overhaul_teacher_bn_train_mode_reaches_the_teacher_view(digits_batch):
    x, y = digits_batch
    teacher, student = tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student")
    teacher.get_layer("bn1").moving_mean.assign(np.full(16, 5.0, "float32"))
    before = [w.copy() for w in teacher.get_weights()]
    term = losses.Overhaul(["relu1"], ["relu1"], teacher_bn_train_mode=True)
    distiller = keras_kd.Distiller(teacher, student, losses=[losses.KD(), term])
    view = distiller.teacher_view(x, training=False)
    pre = keras.ops.convert_to_numpy(keras.Model(teacher.input, teacher.get_layer("conv1").output)(x))
    bn = teacher.get_layer("bn1")
    np.testing.assert_allclose(
        view["relu1:input"], _bn_numpy(pre, bn.gamma.numpy(), bn.beta.numpy(), bn.epsilon), atol=1e-5
    )
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(
        x, y, batch_size=16, epochs=1, verbose=0
    )
    for b, a in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(b, a)
    # Without the option the teacher view uses the moving statistics.
    plain = keras_kd.Distiller(teacher, tiny_cnn(8, name="s2"), losses=[losses.Overhaul(["relu1"], ["relu1"])])
    inference = keras.Model(teacher.input, teacher.get_layer("bn1").output)(x, training=False)
    np.testing.assert_allclose(plain.teacher_view(x)["relu1:input"], inference, atol=1e-5)


def test_batch_statistics_teacher_survives_save_and_load(digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    distiller = keras_kd.Distiller(
        teacher, tiny_cnn(8, name="student"),
        losses=[losses.Overhaul(["relu1"], ["relu1"], teacher_bn_train_mode=True)])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = str(tmp_path / "d.keras")
    distiller.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        restored.teacher_view(x)["relu1:input"], distiller.teacher_view(x)["relu1:input"], atol=1e-6)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed_student")
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(10)

    def call(self, x):
        return self.dense(self.flatten(x))


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
    expected = np.mean((keras.ops.convert_to_numpy(teacher_relu1(x)).astype(np.float64)
                        - keras.ops.convert_to_numpy(student_relu1(x)).astype(np.float64)) ** 2)
    history = distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(
        x, y, batch_size=32, verbose=0  # one step: the logged value is the first batch's
    )
    assert history.history["feature_mse"][0] == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-4
