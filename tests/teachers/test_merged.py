"""Merged teachers (teachers of other classes side by side): the model, its
checks and serialization, and a student taught 0-9 by teachers of 0-4 and 5-9.
The MergedKD term: tests/losses/test_merged_kd.py."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import datasets, losses, teachers
from tests.helpers.models import tiny_cnn


def mlp(classes, name, width=32):
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Flatten(name="flat")(inputs)
    h = keras.layers.Dense(width, activation="relu", name="hidden")(h)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(h), name=name)


def test_merged_model_and_validation():
    a, b = tiny_cnn(4, classes=5, name="a"), tiny_cnn(4, classes=3, name="b")
    merged = teachers.Merged({a: [0, 1, 2, 3, 4], b: [7, 5, 6]})
    x = np.random.default_rng(6).random((2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(merged(x)), np.concatenate([keras.ops.convert_to_numpy(a(x)), keras.ops.convert_to_numpy(b(x))], -1), rtol=1e-6
    )
    assert merged.num_classes == 8 and merged.splits == [5, 3]
    assert merged.class_indices == [[0, 1, 2, 3, 4], [7, 5, 6]]
    assert merged.get_layer("b/relu2").output.shape == (None, 8, 8, 8)
    with pytest.raises(ValueError, match="Teacher 'b' outputs 3 logits but was given 2"):
        teachers.Merged({a: [0, 1, 2, 3, 4], b: [5, 6]})
    with pytest.raises(ValueError, match=r"Teacher 'b' maps several.*\[5\]"):
        teachers.Merged([(a, [0, 1, 2, 3, 4]), (b, [5, 5, 6])])
    with pytest.raises(ValueError, match=r"Teacher 'b' maps to student classes \[7\], out of range"):
        teachers.Merged({a: [0, 1, 2, 3, 4], b: [5, 6, 7]}, num_classes=7)
    with pytest.raises(ValueError, match="teacher 'c' takes inputs of shape"):
        teachers.Merged({a: [0, 1, 2, 3, 4], tiny_cnn(4, classes=2, name="c", input_shape=(6, 6, 1)): [5, 6]})
    with pytest.raises(TypeError, match="pair"):
        teachers.Merged([a])


def test_merged_and_merged_kd_serialize(tmp_path):
    a, b = tiny_cnn(4, classes=5, name="a"), tiny_cnn(4, classes=3, name="b")
    merged = teachers.Merged({a: [0, 1, 2, 3, 4], b: [7, 5, 6]}, num_classes=9)
    path = str(tmp_path / "m.keras")
    merged.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, teachers.Merged)
    assert restored.class_indices == merged.class_indices and restored.num_classes == 9
    x = np.random.default_rng(7).random((2, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(merged(x)), rtol=1e-6)
    term = losses.MergedKD(temperature=3.0, class_indices=[[0, 1], [2]], weight=0.5, name="mkd")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
    assert isinstance(restored, losses.MergedKD) and restored.name == "mkd"
    assert restored.temperature == 3.0 and restored.class_indices == [[0, 1], [2]]
    assert restored.weight == pytest.approx(0.5)


def test_teachers_of_disjoint_digits_teach_a_student_without_labels():
    """0–4 and 5–9 teachers; the student sees no label and learns 0–9."""
    x, y = datasets.load("digits", "train", as_numpy=True)
    x_test, y_test = datasets.load("digits", "test", as_numpy=True)
    low, high = mlp(5, "low"), mlp(5, "high")
    for teacher, mask, offset in ((low, y < 5, 0), (high, y >= 5, 5)):
        teacher.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        teacher.fit(x[mask], y[mask] - offset, batch_size=64, epochs=10, verbose=0)
    merged = teachers.Merged({low: [0, 1, 2, 3, 4], high: [5, 6, 7, 8, 9]})
    student = mlp(10, "student")
    distiller = keras_kd.Distiller(merged, student, losses=[losses.MergedKD(temperature=4.0)])
    distiller.compile(optimizer=keras.optimizers.Adam(0.01))  # no loss: no labels
    distiller.fit(x, batch_size=64, epochs=10, verbose=0)  # x only
    accuracy = float((student.predict(x_test, verbose=0).argmax(-1) == y_test).mean())
    assert accuracy > 0.5, accuracy  # chance is 0.1; about 0.88 in practice


def test_plain_kd_on_a_merged_teacher_is_refused():
    merged = teachers.Merged(
        {tiny_cnn(4, classes=5, name="a"): [0, 1, 2, 3, 4], tiny_cnn(4, classes=5, name="b"): [5, 6, 7, 8, 9]}
    )
    with pytest.raises(ValueError, match="MergedKD"):
        keras_kd.Distiller(merged, tiny_cnn(4, name="student"), losses=[keras_kd.losses.KD()])
