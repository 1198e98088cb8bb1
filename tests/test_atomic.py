"""keras_kd.atomic: the one way keras-kd replaces a file or a directory. The
writers built on it (export_student, Distiller.save): a failed write keeps the
old file byte for byte, overwrite replaces a folder whole, '~' is the home
folder, a read-only folder is named."""

import ast
import json
import os

import keras
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import atomic, losses
from tests.helpers.distillers import kd_distiller as _distiller
from tests.helpers.models import tiny_cnn
from tests.helpers.paths import ROOT


def test_write_json_and_text_land_whole_and_leave_nothing_beside(tmp_path):
    path = tmp_path / "sub" / "record.json"
    atomic.write_json(str(path), {"a": [1, 2]}, indent=1, sort_keys=True)
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    atomic.write_text(str(tmp_path / "sub" / "notes.md"), "é\n")
    assert (tmp_path / "sub" / "notes.md").read_text(encoding="utf-8") == "é\n"
    assert sorted(os.listdir(tmp_path / "sub")) == ["notes.md", "record.json"]


def test_a_failed_write_keeps_the_old_file_and_never_touches_a_users_tmp(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    (tmp_path / "results.json.tmp").write_text("the user's own file")
    with pytest.raises(TypeError):
        atomic.write_json(str(path), {"bad": object()})
    assert path.read_text() == '{"old": true}'
    atomic.write_json(str(path), {"new": True})
    assert json.loads(path.read_text()) == {"new": True}
    assert sorted(os.listdir(tmp_path)) == ["results.json", "results.json.tmp"]
    assert (tmp_path / "results.json.tmp").read_text() == "the user's own file"


def _renames(path):
    """`os.replace`/`os.rename` calls in a module."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in ("replace", "rename")
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "os"]


def test_keras_atomic_is_the_only_module_that_renames_files_into_place():
    found = {}
    for folder, _, names in os.walk(os.path.join(ROOT, "keras_kd")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                lines = _renames(path)
                if lines:
                    found[os.path.relpath(path, ROOT)] = lines
    assert list(found) == [os.path.join("keras_kd", "atomic.py")], found


# ----------------------------------------------------------------------
# The writers: export_student and Distiller.save.
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


def test_a_tilde_path_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path = _distiller().export_student("~/models/student.keras")
    assert path == str(tmp_path / "models" / "student.keras") and os.path.isfile(path)
    assert not os.path.exists(tmp_path / "~")


def test_a_read_only_folder_is_named(tmp_path, monkeypatch):
    import keras_kd.atomic

    real_access = os.access
    monkeypatch.setattr(keras_kd.atomic.os, "access",
                        lambda path, mode: False if path == str(tmp_path) else real_access(path, mode))
    with pytest.raises(PermissionError, match="is not writable"):
        _distiller().export_student(str(tmp_path / "student.keras"))
