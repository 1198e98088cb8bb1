"""Issue 14: inputs that used to fail silently or cryptically now raise clearly."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.tools.config import validate as config
from keras_kd.regimes import schedules
from tests.models import tiny_cnn

X = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
Y = np.arange(32) % 10


def _distiller(terms=None, **compile_kwargs):
    teacher, student = tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student")
    terms = [losses.KD(temperature=4.0)] if terms is None else terms
    distiller = keras_kd.Distiller(teacher, student, losses=terms)
    compile_kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    return distiller.compile(optimizer="adam", **compile_kwargs)


# --- Atomic replacement of exports and saved distillers -----------------------


@keras.saving.register_keras_serializable(package="tests")
class Unserializable(keras.layers.Layer):
    """An identity layer whose config cannot be written."""

    def call(self, x):
        return x

    def get_config(self):
        raise TypeError("this layer cannot be serialized")


def _student_that_cannot_be_saved():
    inputs = keras.Input((8, 8, 1))
    x = Unserializable(name="odd")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="student")


def _siblings(path):
    folder = os.path.dirname(path)
    return sorted(name for name in os.listdir(folder) if name != os.path.basename(path))


def test_failed_keras_export_with_overwrite_keeps_the_old_file_byte_identical(tmp_path):
    good = _distiller()
    target = str(tmp_path / "student.keras")
    good.export_student(target)
    before = open(target, "rb").read()
    bad = keras_kd.Distiller(tiny_cnn(16, name="teacher"), _student_that_cannot_be_saved(),
                             losses=[losses.KD(temperature=4.0)])
    with pytest.raises(Exception, match="cannot be serialized"):
        bad.export_student(target, overwrite=True)
    assert open(target, "rb").read() == before
    assert _siblings(target) == []  # the partial file was removed
    assert keras.saving.load_model(target).name == "student"


def test_failed_distiller_save_with_overwrite_keeps_the_old_file(tmp_path):
    target = str(tmp_path / "distiller.keras")
    _distiller().save(target)
    before = open(target, "rb").read()
    bad = keras_kd.Distiller(tiny_cnn(16, name="teacher"), _student_that_cannot_be_saved(),
                             losses=[losses.KD(temperature=4.0)])
    with pytest.raises(Exception, match="cannot be serialized"):
        bad.save(target, overwrite=True)
    assert open(target, "rb").read() == before and _siblings(target) == []


def test_failed_saved_model_and_tflite_exports_keep_the_old_ones(tmp_path, monkeypatch):
    distiller = _distiller()
    folder = str(tmp_path / "served")
    os.makedirs(tmp_path / "a")
    folder = str(tmp_path / "a" / "served")
    distiller.export_student(folder)
    listing = sorted(os.listdir(folder))

    def half_written(self, path, **kwargs):
        os.makedirs(path)
        open(os.path.join(path, "saved_model.pb"), "wb").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "export", half_written)
    with pytest.raises(RuntimeError, match="disk full"):
        distiller.export_student(folder, overwrite=True)
    assert sorted(os.listdir(folder)) == listing and _siblings(folder) == []
    assert os.path.getsize(os.path.join(folder, "saved_model.pb")) > 0
    monkeypatch.undo()

    os.makedirs(tmp_path / "b")
    flat = str(tmp_path / "b" / "student.tflite")
    distiller.export_student(flat)
    before = open(flat, "rb").read()

    class BrokenConverter:
        optimizations, target_spec = [], None

        def convert(self):
            raise RuntimeError("converter failed")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_keras_model",
                        staticmethod(lambda model: BrokenConverter()))
    with pytest.raises(RuntimeError, match="converter failed"):
        distiller.export_student(flat, overwrite=True)
    assert open(flat, "rb").read() == before and _siblings(flat) == []


def test_overwrite_replaces_an_earlier_saved_model_but_not_a_users_folder(tmp_path):
    distiller = _distiller()
    folder = str(tmp_path / "served")
    distiller.export_student(folder)
    distiller.export_student(folder, overwrite=True)
    assert "saved_model.pb" in os.listdir(folder) and _siblings(folder) == []
    open(os.path.join(folder, "stale.txt"), "w").close()  # the user's file, now inside
    with pytest.raises(FileExistsError, match=r"a folder holding .*stale\.txt"):
        distiller.export_student(folder, overwrite=True)
    assert "stale.txt" in os.listdir(folder) and _siblings(folder) == []


# --- Labels checked in-graph for tf.data ---------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("bad, message", [(-2, r"label\] \[-2\] \[is negative"),
                                          (10, r"label\] \[10\] \[is out of range")])
def test_tf_data_labels_are_checked_in_graph(jit, bad, message):
    distiller = _distiller(jit_compile=jit)
    labels = np.where(Y > 5, bad, Y)
    data = tf.data.Dataset.from_tensor_slices((X, labels)).batch(8)
    before = [w.numpy().copy() for w in distiller.student.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        distiller.fit(data, epochs=1, verbose=0)
    # The first batch (labels 0..5 are fine, 6.. are bad) already holds a bad
    # label, so no gradient step was applied.
    for old, new in zip(before, distiller.student.trainable_weights):
        np.testing.assert_array_equal(old, new.numpy())


def test_unlabeled_minus_one_and_non_finite_float_labels():
    distiller = _distiller()
    unlabeled = tf.data.Dataset.from_tensor_slices((X, np.where(Y > 5, -1, Y))).batch(8)
    history = distiller.fit(unlabeled, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    one_hot = keras.utils.to_categorical(Y, 10)
    one_hot[3, 0] = np.nan
    dense = _distiller(loss="categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((X, one_hot)).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        dense.fit(data, epochs=1, verbose=0)


def test_label_check_is_a_no_op_for_valid_labels():
    from keras_kd.checks.batches import check_label_values

    y = tf.constant([0, 9, -1])
    np.testing.assert_array_equal(tf.function(check_label_values)(y, 10), y)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[3\] \[is out of range"):
        tf.function(check_label_values)(tf.constant([0, 3]), 3)


# --- evaluate without labels; 0-step epochs ------------------------------------


def test_evaluate_without_labels_raises():
    distiller = _distiller()
    with pytest.raises(ValueError, match="evaluate\\(\\) got inputs without labels"):
        distiller.evaluate(X, verbose=0)
    with pytest.raises(ValueError, match="without labels"):
        distiller.evaluate(tf.data.Dataset.from_tensor_slices(X).batch(8), verbose=0)


def test_evaluate_without_labels_reports_label_free_terms_when_asked():
    distiller = _distiller(evaluate_distillation=True)
    scores = distiller.evaluate(X, verbose=0, return_dict=True)
    assert "student_loss" not in scores and scores["kd"] > 0
    assert scores["loss"] == pytest.approx(scores["kd"])  # weight 1, no student loss


def test_unlabeled_training_without_terms_raises():
    distiller = _distiller(terms=[])
    with pytest.raises(ValueError, match="nothing to learn from"):
        distiller.fit(X, epochs=1, verbose=0)


def test_a_dataset_empty_after_filter_raises_instead_of_training_zero_steps():
    distiller = _distiller()
    data = tf.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: y > 100).batch(8)
    assert int(data.cardinality()) < 0  # unknown: cannot be seen before reading
    with pytest.raises(ValueError, match="Epoch 1 trained 0 steps.*filter\\(\\)"):
        distiller.fit(data, epochs=2, verbose=0)
    with pytest.raises(ValueError, match="evaluate\\(\\) read no batch"):
        distiller.evaluate(data, verbose=0)
    good = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    with pytest.raises(ValueError, match="validation data yielded no batch"):
        distiller.fit(good, validation_data=data, epochs=1, verbose=0)


# --- Duplicate keys in run configs ---------------------------------------------


@pytest.mark.parametrize("name, text, message", [
    ("run.yaml", "epochs: 3\nseed: 1\nepochs: 5\n", r"key 'epochs' is given twice \(lines 1 and 3\)"),
    ("run.yaml", "dataset:\n  name: digits\n  batch_size: 8\n  batch_size: 16\n",
     r"key 'batch_size' is given twice \(lines 3 and 4\)"),
    ("run.toml", "epochs = 3\nseed = 1\nepochs = 5\n", r"key 'epochs' is given twice \(again at line 3\)"),
    ("run.toml", "[dataset]\nname = 'digits'\n[dataset]\nbatch_size = 8\n",
     r"key 'dataset' is given twice \(again at line 3\)"),
])
def test_duplicate_config_keys_raise_naming_key_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.read(path)


def test_yaml_merge_keys_may_still_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("base: &b {batch_size: 8}\ndataset:\n  <<: *b\n  batch_size: 16\n")
    assert config.read(path)["dataset"] == {"batch_size": 16}


# --- A term belongs to one Distiller --------------------------------------------


def test_a_term_reused_in_a_second_distiller_is_refused():
    hint = losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")
    kd = losses.KD(temperature=4.0)
    keras_kd.Distiller(tiny_cnn(16, name="t1"), tiny_cnn(8, name="s1"), losses=[kd, hint])
    with pytest.raises(ValueError, match=r"'hint' \(FeatureMSE\) already belongs.*from_config"):
        keras_kd.Distiller(tiny_cnn(16, name="t2"), tiny_cnn(4, name="s2"), losses=[hint])
    # The advertised fix works: an untrained copy of the term.
    fresh = losses.FeatureMSE.from_config(hint.get_config())
    keras_kd.Distiller(tiny_cnn(16, name="t2"), tiny_cnn(4, name="s2"), losses=[fresh])


def test_a_failed_distiller_does_not_claim_its_terms():
    kd = losses.KD(temperature=4.0)
    with pytest.raises(ValueError, match="same model object"):
        student = tiny_cnn(8)
        keras_kd.Distiller(student, student, losses=[kd])
    keras_kd.Distiller(tiny_cnn(16, name="t"), tiny_cnn(8, name="s"), losses=[kd])


# --- NumPy scalars are numbers ---------------------------------------------------


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


def test_the_callbacks_fit_adds_let_keras_dispatch_batch_hooks_without_a_per_step_sync():
    # A callback overriding on_train_batch_end without `async_safe` makes
    # Keras pull every step's logs to the host (a sync per step, ~10% of a
    # small model's epoch). The guards and the default schedule must not.
    from keras_kd.checks.guards import RequireTestBatches, guard_fit

    distiller = keras_kd.Distiller(tiny_cnn(), tiny_cnn(), losses=[losses.DKD(temperature=4.0)])
    added = guard_fit(schedules.with_default_schedules(distiller, None), {"validation_data": 1})
    added.append(RequireTestBatches())
    assert any(isinstance(c, schedules.LossWeightScheduler) for c in added)
    for callback in added:
        hooks = ("on_train_batch_end", "on_test_batch_end", "on_batch_end")
        overridden = [h for h in hooks
                      if getattr(type(callback), h) is not getattr(keras.callbacks.Callback, h)]
        assert not overridden or getattr(callback, "async_safe", False), (callback, overridden)
    assert schedules.LossWeightScheduler(per_step=True).async_safe is False
