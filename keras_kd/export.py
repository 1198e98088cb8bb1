"""Export of a trained student for serving: SavedModel, `.keras`, TFLite."""

import os
import zipfile

from keras_kd.atomic import refuse_existing, user_path, write_atomically

import keras

FORMATS = ("tf_saved_model", "keras", "tflite")


def infer_format(path):
    """`.keras` -> keras, `.tflite` -> tflite, anything else -> SavedModel."""
    path = str(path)
    if path.endswith(".keras"):
        return "keras"
    if path.endswith(".tflite"):
        return "tflite"
    return "tf_saved_model"


# Extensions a user may reach for that would otherwise silently become the
# name of a SavedModel directory.
_OTHER_FILE_TYPES = {
    ".h5": "Keras 3 writes the legacy HDF5 format only through model.save",
    ".hdf5": "Keras 3 writes the legacy HDF5 format only through model.save",
    ".onnx": "convert a SavedModel with tf2onnx",
    ".pb": "a SavedModel is a folder holding saved_model.pb",
    ".json": "an architecture alone is model.to_json()",
    ".zip": "a .keras archive is already a zip",
}

QUANTIZATIONS = (None, "float16", "dynamic_int8")


def export_model(model, path, format=None, overwrite=False, verbose=False, quantize=None):
    """Writes `model` to `path` for serving and returns the path.

    Args:
        model: the (student) `keras.Model`.
        path: destination. A SavedModel is a directory.
        format: `"tf_saved_model"` (a `serving_default` signature, load with
            `tf.saved_model.load` or serve with TF Serving), `"keras"` or
            `"tflite"`; inferred from the path when None. SavedModel needs
            the TensorFlow or JAX backend and TFLite the TensorFlow backend;
            on PyTorch write `.keras` and convert it in a TensorFlow process.
        overwrite: replace an earlier export at `path` (a Keras archive, a
            SavedModel folder or a TFLite file, recognised by its content:
            `is_export`). Anything else there (your own files or folders) is
            never replaced: a FileExistsError says what is there. The new
            export is written beside the old one first and renamed over it
            only once complete, so a failed export leaves the old one untouched.
        verbose: print Keras's export summary.
        quantize: TFLite only: None (float32), `"float16"` (weights stored in
            float16, ~half the size) or `"dynamic_int8"` (dynamic-range int8
            weights, ~a quarter of the size; activations stay float).
    """
    path = user_path(path)
    extension = os.path.splitext(path)[1].lower()
    if format is None and extension in _OTHER_FILE_TYPES:
        raise ValueError(
            f"'{path}' ends in '{extension}', which export_student does not write "
            f"({_OTHER_FILE_TYPES[extension]}). Use a '.keras' or '.tflite' path, or a "
            "folder name for a SavedModel (or pass format= explicitly)."
        )
    format = format or infer_format(path)
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; use one of {FORMATS}.")
    if format == "keras" and not path.endswith(".keras"):
        raise ValueError(
            f"A Keras archive must end in '.keras', got '{path}'."
        )
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantize={quantize!r}; use one of {QUANTIZATIONS}.")
    if format == "tflite" and keras.backend.backend() != "tensorflow":
        raise ValueError(
            "TFLite export needs the TensorFlow backend (Keras is using "
            f"'{keras.backend.backend()}'). Export the student as '.keras' here, "
            "then convert it in a process started with KERAS_BACKEND=tensorflow: "
            "keras_kd.export.export_model(keras.saving.load_model(path), 'student.tflite')."
        )
    if format == "tf_saved_model" and keras.backend.backend() == "torch":
        # Keras 3 exports a SavedModel from torch through torch.export and
        # torch_xla's StableHLO bridge, which has no build for current torch.
        raise ValueError(
            "SavedModel export needs the TensorFlow or JAX backend (Keras is using "
            "'torch', whose SavedModel export goes through torch_xla). Export the student "
            "as '.keras' here, then convert it in a process started with "
            "KERAS_BACKEND=tensorflow: keras_kd.export.export_model("
            "keras.saving.load_model('student.keras'), 'serving_dir')."
        )
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} applies to TFLite export only, not {format!r}.")
    refuse_existing(path, overwrite, replaceable=is_export,
                    what="an earlier export (a Keras archive, a SavedModel folder or a TFLite file)")
    if format == "keras":
        write = model.save
    elif format == "tf_saved_model":
        def write(target):
            model.export(target, format="tf_saved_model", verbose=verbose)
    else:
        flatbuffer = _tflite_flatbuffer(model, quantize)  # may fail: nothing written yet

        def write(target):
            with open(target, "wb") as handle:
                handle.write(flatbuffer)
    write_atomically(path, write)
    return path


# What a Keras archive (`model.save`), a SavedModel folder (`model.export`)
# and a TFLite flatbuffer hold; anything more is not (only) an export.
_ARCHIVE_REQUIRED = {"metadata.json", "config.json"}
_ARCHIVE_SUFFIXES = (".weights.h5", ".weights.json", ".weights.npz")
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                        "assets.extra", "fingerprint.pb", "keras_metadata.pb"}


def is_keras_archive(path):
    """True for a `.keras` zip holding a model's config, metadata and weights only."""
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return _ARCHIVE_REQUIRED <= names and all(
        name in _ARCHIVE_REQUIRED or name.endswith(_ARCHIVE_SUFFIXES)
        or name.startswith("assets/") for name in names)


def is_saved_model(path):
    """True for a SavedModel folder (saved_model.pb, variables/, ...) and
    nothing else in it."""
    if not os.path.isdir(path):
        return False
    names = set(os.listdir(path))
    return bool(names & {"saved_model.pb", "saved_model.pbtxt"}) and names <= _SAVED_MODEL_ENTRIES


def is_tflite(path):
    """True for a TFLite flatbuffer (file identifier 'TFL3' at byte 4)."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as handle:
        return handle.read(8)[4:8] == b"TFL3"


def is_export(path):
    """True when `path` holds what `export_model` writes (a Keras archive, a
    SavedModel folder, a TFLite file) or an empty folder: what
    `overwrite=True` may replace."""
    if os.path.islink(path):
        return False
    if os.path.isdir(path) and not os.listdir(path):
        return True
    return is_keras_archive(path) or is_saved_model(path) or is_tflite(path)


def _tflite_flatbuffer(model, quantize):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()
