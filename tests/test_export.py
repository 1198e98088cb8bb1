"""Export of the student alone for serving."""

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.distillers import kd_distiller as _distiller
from tests.helpers.litert import Interpreter
from tests.helpers.models import tiny_cnn
from tests.helpers.processes import subprocess_timeout


@pytest.fixture
def trained(digits_batch):
    x, y = digits_batch
    teacher, student = tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student")
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[losses.KD(temperature=4.0), losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")],
    )
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(
        x, y, batch_size=16, epochs=1, verbose=0
    )
    return distiller, x


def test_saved_model_holds_the_student_only_and_matches_predict(trained, tmp_path):
    distiller, x = trained
    path = distiller.export_student(str(tmp_path / "student"))
    loaded = tf.saved_model.load(path)
    serving = loaded.signatures["serving_default"]
    outputs = serving(tf.constant(x))
    (served,) = outputs.values()
    expected = distiller.student.predict(x, verbose=0)  # T = 1: plain logits
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5, rtol=1e-5)
    names = {v.name for v in loaded.variables}
    assert not any("teacher" in n or "adapter" in n for n in names), names
    assert len(loaded.variables) == len(distiller.student.weights)


def test_saved_model_cli_shows_the_serving_signature(trained, tmp_path):
    distiller, _ = trained
    path = distiller.export_student(str(tmp_path / "student"))
    cli = shutil.which("saved_model_cli")
    command = [cli] if cli else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        command + ["show", "--dir", path, "--all"], capture_output=True, text=True, timeout=subprocess_timeout()
    )
    assert result.returncode == 0, result.stderr
    assert "serving_default" in result.stdout
    assert "(-1, 8, 8, 1)" in result.stdout


def test_keras_archive_reloads_to_the_same_outputs(trained, tmp_path):
    distiller, x = trained
    path = distiller.export_student(str(tmp_path / "student.keras"))
    reloaded = keras.saving.load_model(path)
    assert reloaded.name == "student"
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), distiller.student.predict(x, verbose=0), atol=1e-6
    )


def test_export_never_overwrites_unless_asked(trained, tmp_path):
    distiller, _ = trained
    target = tmp_path / "student.keras"
    distiller.export_student(str(target))
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        distiller.export_student(str(target))
    assert target.read_bytes() == before
    # An earlier export is replaced with overwrite=True: a script re-runs.
    distiller.student.layers[-1].kernel.assign(distiller.student.layers[-1].kernel * 2.0)
    distiller.export_student(str(target), overwrite=True)
    reloaded = keras.saving.load_model(str(target))
    np.testing.assert_array_equal(reloaded.layers[-1].kernel.numpy(),
                                  keras.ops.convert_to_numpy(distiller.student.layers[-1].kernel))
    folder = tmp_path / "served"
    os.makedirs(folder)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        distiller.export_student(str(folder))


# Paths holding the user's own things: overwrite=True never replaces them.
USERS_OWN = {
    "a text file named like an archive": ("student.keras", "file", b"the user's file"),
    "a zip that is not a Keras archive": ("student.keras", "zip", None),
    "a folder of the user's files": ("student", "folder", None),
    "a SavedModel folder with the user's notes in it": ("student", "saved_model_plus", None),
    "a file where a SavedModel would go": ("student", "file", b"data"),
    "a text file named like a TFLite model": ("student.tflite", "file", b"not a flatbuffer"),
}


@pytest.mark.parametrize("case", sorted(USERS_OWN))
def test_overwrite_never_replaces_the_users_own_files(trained, tmp_path, case):
    import zipfile

    distiller, _ = trained
    name, kind, data = USERS_OWN[case]
    target = tmp_path / name
    if kind == "file":
        target.write_bytes(data)
    elif kind == "zip":
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("thesis.tex", "chapter 1")
    else:
        if kind == "saved_model_plus":
            distiller.export_student(str(target))
        else:
            os.makedirs(target / "data")
        (target / "notes.txt").write_text("mine")

    def snapshot():
        if target.is_file():
            return target.read_bytes()
        return sorted((os.path.relpath(os.path.join(d, f), target), open(os.path.join(d, f), "rb").read())
                      for d, _, files in os.walk(target) for f in files)

    before = snapshot()
    with pytest.raises(FileExistsError, match="replaces an earlier export") as error:
        distiller.export_student(str(target), overwrite=True)
    message = str(error.value)
    assert "left untouched" in message
    # What is there is named: the folder's entries, or the file's size.
    if target.is_dir():
        assert "notes.txt" in message, message
    else:
        assert f"a file of {target.stat().st_size:,} bytes" in message, message
    assert snapshot() == before
    assert sorted(os.listdir(tmp_path)) == [name]  # no partial export left beside it


def test_overwrite_replaces_earlier_exports_of_each_format(trained, tmp_path):
    distiller, x = trained
    paths = {"keras": str(tmp_path / "s.keras"), "tf_saved_model": str(tmp_path / "s"),
             "tflite": str(tmp_path / "s.tflite")}
    for path in paths.values():
        distiller.export_student(path)
    kernel = distiller.student.layers[-1].kernel
    kernel.assign(kernel * 0.5)
    expected = distiller.student.predict(x, verbose=0)
    for path in paths.values():
        assert distiller.export_student(path, overwrite=True) == path
    np.testing.assert_allclose(keras.saving.load_model(paths["keras"]).predict(x, verbose=0),
                               expected, atol=1e-6)
    (served,) = tf.saved_model.load(paths["tf_saved_model"]).signatures["serving_default"](
        tf.constant(x)).values()
    np.testing.assert_allclose(served.numpy(), expected, atol=1e-5)
    interpreter = Interpreter(model_path=paths["tflite"])
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]),
                               expected, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["s", "s.keras", "s.tflite"]


def test_overwrite_never_follows_a_symbolic_link(trained, tmp_path):
    distiller, _ = trained
    real = tmp_path / "real.keras"
    distiller.export_student(str(real))
    before = real.read_bytes()
    link = tmp_path / "link.keras"
    os.symlink(real, link)
    with pytest.raises(FileExistsError, match="symbolic link"):
        distiller.export_student(str(link), overwrite=True)
    assert os.path.islink(link) and real.read_bytes() == before


def test_unknown_export_format(trained, tmp_path):
    distiller, _ = trained
    with pytest.raises(ValueError, match="Unknown export format"):
        distiller.export_student(str(tmp_path / "x"), format="onnx")


# Largest error allowed, as a fraction of the largest |logit| (the student's
# logits are small, |z| <= ~0.15, so an absolute tolerance would pass an
# all-zeros output). Measured, largest |logit| 0.137: float32 2.4e-8 (1.8e-7
# of the scale), float16 6.3e-5 (4.6e-4), dynamic int8 5.7e-4 (4.2e-3); the
# tolerances leave ~4-5x of room.
@pytest.mark.parametrize("quantize, relative_error", [(None, 1e-5), ("float16", 2e-3), ("dynamic_int8", 2e-2)])
def test_tflite_matches_the_keras_student(trained, tmp_path, quantize, relative_error):
    distiller, x = trained
    path = distiller.export_student(str(tmp_path / "student.tflite"), quantize=quantize)
    interpreter = Interpreter(model_path=path)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    expected = distiller.student.predict(x, verbose=0)
    scale = np.abs(expected).max()
    assert scale > 1e-3, "the student's logits are all ~0: the comparison would mean nothing"
    error = np.abs(got - expected).max()
    assert error <= relative_error * scale, (quantize, error, scale)
    # Every sample's class is kept: the argmax margins here are wider than
    # the quantization error (checked, so a tie cannot make this flaky).
    top2 = np.sort(expected, axis=-1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 2 * error, "a near-tie: pick other inputs"
    np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))


def test_quantize_is_for_tflite_only(trained, tmp_path):
    distiller, _ = trained
    with pytest.raises(ValueError, match="TFLite export only"):
        distiller.export_student(str(tmp_path / "s.keras"), quantize="float16")
    with pytest.raises(ValueError, match="Unknown quantize"):
        distiller.export_student(str(tmp_path / "s.tflite"), quantize="int4")


def test_saved_model_cli_runs_the_served_student(trained, tmp_path):
    distiller, x = trained
    path = distiller.export_student(str(tmp_path / "student"))
    np.save(tmp_path / "x.npy", x[:4])
    cli = shutil.which("saved_model_cli")
    command = [cli] if cli else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    signature = tf.saved_model.load(path).signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1].keys()
    result = subprocess.run(
        command + ["run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
                   "--inputs", f"{input_name}={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=subprocess_timeout(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (saved,) = [f for f in os.listdir(tmp_path / "out") if f.endswith(".npy")]
    np.testing.assert_allclose(np.load(tmp_path / "out" / saved), distiller.student.predict(x[:4], verbose=0), atol=1e-5)


def test_distiller_save_never_overwrites_unless_asked(trained, tmp_path):
    distiller, _ = trained
    target = tmp_path / "distiller.keras"
    target.write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        distiller.save(str(target))
    # Not a Keras archive: not replaced even with overwrite=True.
    with pytest.raises(FileExistsError, match="not an earlier Keras archive"):
        distiller.save(str(target), overwrite=True)
    assert target.read_text() == "precious"
    saved = tmp_path / "saved.keras"
    distiller.save(str(saved))
    distiller.save(str(saved), overwrite=True)  # an earlier save: replaced
    assert isinstance(keras.saving.load_model(str(saved)), keras_kd.Distiller)


@pytest.mark.parametrize("name", ["student.h5", "student.hdf5", "student.onnx", "model.pb"])
def test_file_extensions_export_does_not_write_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="export_student does not write"):
        _distiller().export_student(str(tmp_path / name))
    assert os.listdir(tmp_path) == []
