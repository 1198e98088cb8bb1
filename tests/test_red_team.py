"""Red team (issue 14, part 2): unusual inputs a demanding user tries.

Each test is one row of docs/errors.md's "Red team" table: either the input
now gets a clear error naming the fix, or the test pins down that it works
correctly (so it cannot silently break later).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses, teachers
from tests.helpers.models import tiny_cnn

X = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
Y = np.arange(32) % 10


def _distiller(terms=None, teacher=None, student=None, **compile_kwargs):
    teacher = teacher or tiny_cnn(16, name="teacher")
    student = student or tiny_cnn(8, name="student")
    terms = [losses.KD(temperature=4.0)] if terms is None else terms
    distiller = keras_kd.Distiller(teacher, student, losses=terms)
    compile_kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    return distiller.compile(optimizer="adam", **compile_kwargs)


def _batches(*arrays, batch=8):
    return tf.data.Dataset.from_tensor_slices(arrays if len(arrays) > 1 else arrays[0]).batch(batch)


def _fit(distiller, *args, **kwargs):
    kwargs.setdefault("epochs", 1)
    return distiller.fit(*args, verbose=0, **kwargs).history


# --- Data structures: TFDS, tf.data --------------------------------------------


def test_tfds_style_dict_dataset_names_the_map():
    data = tf.data.Dataset.from_tensor_slices({"image": X, "label": Y}).batch(8)
    with pytest.raises(ValueError, match=r"dataset.map\(lambda d: \(d\['image'\], d\['label'\]\)\)"
                                         r".*as_supervised=True"):
        _fit(_distiller(), data)


def test_nested_tuple_inputs_train():
    history = _fit(_distiller(), _batches((X,), Y))
    assert history["student_loss"][0] > 0


def test_unbatched_dataset_says_batch_it():
    with pytest.raises(ValueError, match=r"without a batch axis.*dataset.batch\(32\)"):
        _fit(_distiller(), tf.data.Dataset.from_tensor_slices((X, Y)))


def test_unknown_static_shapes_are_checked_in_graph():
    spec = (tf.TensorSpec((None, None, None, 1), tf.float32), tf.TensorSpec((None,), tf.int64))

    def batches(size):
        def generate():
            for _ in range(2):
                yield np.zeros((8, size, size, 1), np.float32), Y[:8]
        return tf.data.Dataset.from_generator(generate, output_signature=spec)

    assert len(_fit(_distiller(), batches(8))["loss"]) == 1  # the right size trains
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"batch has input shape\] \[8 9 9 1\]"):
        _fit(_distiller(), batches(9))


def test_ragged_inputs_are_refused():
    ragged = tf.ragged.constant([[1.0, 2.0], [3.0]])
    data = tf.data.Dataset.from_tensor_slices((ragged, [0, 1])).batch(2)
    with pytest.raises(TypeError, match=r"ragged.*to_tensor\(\)"):
        _fit(_distiller(), data)


def test_string_labels_are_refused_with_stringlookup():
    data = _batches(X, np.array([str(v) for v in Y]))
    with pytest.raises(TypeError, match="dtype string.*StringLookup"):
        _fit(_distiller(), data)


def test_labels_as_a_python_list_say_np_asarray():
    with pytest.raises(TypeError, match=r"Python list of 32 numbers.*np.asarray"):
        _fit(_distiller(), X, list(Y))


def test_uint8_images_and_labels_train():
    history = _fit(_distiller(), _batches((X * 255).astype("uint8"), Y.astype("uint8")))
    assert history["student_loss"][0] > 0


def test_generator_with_bad_labels_fails_in_graph_naming_the_label():
    def generate():
        while True:
            yield X[:8], np.full(8, 12)

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label\] \[12\] \[is out of range"):
        _fit(_distiller(), generate(), steps_per_epoch=2)


def test_unlabeled_training_data_with_a_label_free_term_trains_on_it_alone():
    history = _fit(_distiller(), X)
    assert "student_loss" not in history and history["loss"] == history["kd"]


# --- Loss, metrics and compile combinations ------------------------------------


def test_metric_strings_give_the_true_accuracy():
    distiller = _distiller(metrics=["accuracy", "acc", "sparse_categorical_accuracy"])
    _fit(distiller, X, Y)
    scores = distiller.evaluate(X, Y, verbose=0, return_dict=True)
    truth = float((distiller.predict(X, verbose=0).argmax(-1) == Y).mean())
    for name in ("accuracy", "acc", "sparse_categorical_accuracy"):
        assert scores[name] == pytest.approx(truth)


def test_one_hot_labels_with_categorical_loss_and_accuracy():
    one_hot = keras.utils.to_categorical(Y, 10)
    distiller = _distiller(loss="categorical_crossentropy", metrics=["accuracy"])
    _fit(distiller, X, one_hot)
    scores = distiller.evaluate(X, one_hot, verbose=0, return_dict=True)
    truth = float((distiller.predict(X, verbose=0).argmax(-1) == Y).mean())
    assert scores["accuracy"] == pytest.approx(truth)


def test_a_categorical_metric_that_contradicts_the_loss_names_the_right_one():
    with pytest.raises(ValueError, match="Use 'sparse_top_k_categorical_accuracy'"):
        _distiller(metrics=["top_k_categorical_accuracy"])
    with pytest.raises(ValueError, match="Use 'categorical_accuracy'"):
        _distiller(loss="categorical_crossentropy", metrics=["sparse_categorical_accuracy"])


def test_a_probability_loss_on_a_logits_student_is_refused():
    with pytest.raises(ValueError, match=r"from_logits=False.*outputs logits.*from_logits=True"):
        _distiller(loss=keras.losses.SparseCategoricalCrossentropy())
    _distiller(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def test_softmax_terms_on_a_one_logit_binary_head_are_refused():
    binary = dict(teacher=tiny_cnn(16, classes=1, name="teacher"),
                  student=tiny_cnn(8, classes=1, name="student"))
    with pytest.raises(ValueError, match=r"one logit.*\['kd'\].*would be 0"):
        _distiller(loss="binary_crossentropy", **binary)


def test_binary_accuracy_on_logits_thresholds_at_zero():
    distiller = _distiller(terms=[], loss="binary_crossentropy", metrics=["accuracy"],
                           teacher=tiny_cnn(16, classes=1, name="teacher"),
                           student=tiny_cnn(8, classes=1, name="student"))
    labels = (Y > 4).astype("float32")
    logits = distiller.predict(X, verbose=0)[:, 0]
    truth = float(((logits > 0) == labels).mean())
    scores = distiller.evaluate(X, labels, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(truth)


def test_mixed_precision_with_integer_labels():
    keras.config.set_dtype_policy("mixed_float16")
    distiller = _distiller()
    history = _fit(distiller, X, Y)
    assert distiller.student.layers[-1].compute_dtype == "float16"
    assert np.isfinite(history["loss"][0]) and history["student_loss"][0] > 0


def test_jit_compile_and_mixed_precision_still_check_labels():
    keras.config.set_dtype_policy("mixed_float16")
    data = _batches(X, np.where(Y > 5, -2, Y))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"label\] \[-2\]"):
        _fit(_distiller(jit_compile=True), data)


def test_steps_per_execution_trains_and_checks_labels_up_front():
    assert len(_fit(_distiller(steps_per_execution=3), X, Y, batch_size=4)["loss"]) == 1
    with pytest.raises(ValueError, match=r"Labels range over \[-2, 8\]"):
        _fit(_distiller(steps_per_execution=3), X, np.where(Y > 8, -2, Y), batch_size=4)


# --- sample_weight and class_weight ---------------------------------------------


@pytest.mark.parametrize("weights, message", [
    (np.ones((32, 2)), r"shape \(32, 2\).*one weight per sample"),
    (-np.ones(32), "negative, NaN or Inf"),
    (np.full(32, np.nan), "negative, NaN or Inf"),
])
def test_bad_sample_weights_are_refused_up_front(weights, message):
    with pytest.raises(ValueError, match=message):
        _fit(_distiller(), X, Y, sample_weight=weights)


def test_negative_sample_weights_in_a_dataset_fail_in_graph():
    data = _batches(X, Y, -np.ones(32, np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample weights must be finite and >= 0"):
        _fit(_distiller(), data)


def test_sample_weight_of_shape_n_by_1_equals_shape_n():
    weights = np.linspace(0.0, 2.0, 32).astype("float32")
    distiller = _distiller()
    losses_1d = distiller.evaluate(X, Y, sample_weight=weights, verbose=0)
    losses_2d = distiller.evaluate(X, Y, sample_weight=weights[:, None], verbose=0)
    unweighted = distiller.evaluate(X, Y, verbose=0)
    assert losses_1d == pytest.approx(losses_2d) and losses_1d[0] != pytest.approx(unweighted[0])


def test_class_weight_equals_the_sample_weights_it_stands_for():
    class_weight = {c: float(c + 1) for c in range(10)}
    keras.utils.set_random_seed(7)
    by_class = _fit(_distiller(), X, Y, class_weight=class_weight, shuffle=False)
    keras.utils.set_random_seed(7)
    by_sample = _fit(_distiller(), X, Y, sample_weight=Y + 1.0, shuffle=False)
    assert by_class["student_loss"] == pytest.approx(by_sample["student_loss"], rel=1e-5)


# --- Validation data, evaluate, predict --------------------------------------------


def test_validation_data_is_checked_up_front():
    with pytest.raises(ValueError, match=r"Labels range over \[5, 14\]"):
        _fit(_distiller(), X, Y, validation_data=(X, Y + 5))


def test_validation_split_and_tuple_give_val_metrics():
    history = _fit(_distiller(), X, Y, validation_split=0.25)
    assert history["val_student_loss"][0] > 0
    history = _fit(_distiller(), X, Y, validation_data=(X, Y))
    assert history["val_student_loss"][0] > 0


def test_validation_data_without_labels_raises():
    with pytest.raises(ValueError, match="evaluate\\(\\) got inputs without labels"):
        _fit(_distiller(), X, Y, validation_data=X)


def test_predict_on_unbatched_data_is_refused():
    distiller = _distiller()
    with pytest.raises(ValueError, match="without a batch axis"):
        distiller.predict(tf.data.Dataset.from_tensor_slices(X), verbose=0)
    with pytest.raises(ValueError, match=r"x\[None\]"):
        distiller.predict(X[0], verbose=0)
    assert distiller.predict(X[:1], verbose=0).shape == (1, 10)


def test_predict_on_labeled_batches_ignores_the_labels():
    distiller = _distiller()
    np.testing.assert_allclose(distiller.predict(_batches(X, Y), verbose=0),
                               distiller.predict(X, verbose=0), atol=1e-6)


def test_predict_on_a_dict_with_a_wrong_key_names_the_expected_key():
    distiller = _distiller()
    name = distiller.student.layers[0].name  # the InputLayer
    with pytest.raises(ValueError, match=f"Expected the following keys: \\['{name}'\\]"):
        distiller.predict({"x": X}, verbose=0)


# --- Files and paths -------------------------------------------------------------


def test_a_tilde_path_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path = _distiller().export_student("~/models/student.keras")
    assert path == str(tmp_path / "models" / "student.keras") and os.path.isfile(path)
    assert not os.path.exists(tmp_path / "~")


@pytest.mark.parametrize("name", ["student.h5", "student.hdf5", "student.onnx", "model.pb"])
def test_file_extensions_export_does_not_write_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="export_student does not write"):
        _distiller().export_student(str(tmp_path / name))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["distiller.h5", "distiller"])
def test_distiller_save_needs_a_keras_archive(tmp_path, name):
    with pytest.raises(ValueError, match="writes a '.keras' archive"):
        _distiller().save(str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_a_read_only_folder_is_named(tmp_path, monkeypatch):
    import keras_kd.atomic

    real_access = os.access
    monkeypatch.setattr(keras_kd.atomic.os, "access",
                        lambda path, mode: False if path == str(tmp_path) else real_access(path, mode))
    with pytest.raises(PermissionError, match="is not writable"):
        _distiller().export_student(str(tmp_path / "student.keras"))


def test_model_checkpoint_callbacks(tmp_path):
    distiller = _distiller()
    best = tmp_path / "best.keras"
    _fit(distiller, X, Y, epochs=2, validation_data=(X, Y),
         callbacks=[keras.callbacks.ModelCheckpoint(str(best), save_best_only=True)])
    assert isinstance(keras.saving.load_model(str(best)), keras_kd.Distiller)
    weights = tmp_path / "ck.weights.h5"
    _fit(distiller, X, Y, callbacks=[
        keras.callbacks.ModelCheckpoint(str(weights), save_weights_only=True)])
    assert weights.stat().st_size > 0
    with pytest.raises(ValueError, match="writes a '.keras' archive"):
        _fit(distiller, X, Y, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "c.h5"))])


def test_early_stopping_restores_the_best_weights():
    distiller = _distiller()
    history = _fit(distiller, X, Y, epochs=3, validation_data=(X, Y), callbacks=[
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, restore_best_weights=True)])
    assert distiller.evaluate(X, Y, verbose=0)[0] == pytest.approx(min(history["val_loss"]), rel=1e-5)


def test_backup_and_restore_resumes_in_the_same_process(tmp_path):
    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("power cut")

    distiller = _distiller()
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="power cut"):
        _fit(distiller, X, Y, epochs=4, callbacks=[keras.callbacks.BackupAndRestore(backup), Crash()])
    history = _fit(distiller, X, Y, epochs=4, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    assert len(history["loss"]) == 2  # epochs 3 and 4 only


# --- Several teachers ------------------------------------------------------------------


def test_an_ensemble_teacher_trains_saves_and_reloads(tmp_path):
    ensemble = teachers.Ensemble([tiny_cnn(16, name="t1"), tiny_cnn(12, name="t2")])
    distiller = _distiller(teacher=ensemble)
    assert _fit(distiller, X, Y)["kd"][0] > 0
    path = str(tmp_path / "ensemble.keras")
    distiller.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(X, verbose=0), distiller.predict(X, verbose=0), atol=1e-6)


def test_an_ensemble_of_one_teacher_twice_is_refused():
    teacher = tiny_cnn(16, name="t1")
    with pytest.raises(ValueError, match="share the name"):
        teachers.Ensemble([teacher, teacher])


# --- Numbers -----------------------------------------------------------------------------


def test_tensors_as_temperature_are_refused_but_numpy_0d_arrays_are_numbers():
    with pytest.raises(TypeError, match="must be a number"):
        losses.KD(temperature=tf.Variable(4.0))
    assert losses.KD(temperature=np.array(4.0)).temperature == 4.0


def test_zero_epochs_is_a_no_op_not_an_error():
    assert _fit(_distiller(), X, Y, epochs=0) == {}
