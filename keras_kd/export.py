"""Export of a trained student for serving: SavedModel, `.keras`, TFLite."""

import os

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
            `"tflite"`; inferred from the path when None.
        overwrite: replace an existing file or directory. The new export is
            written beside it first and renamed over it only once complete,
            so a failed export leaves the old one untouched.
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
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} applies to TFLite export only, not {format!r}.")
    refuse_existing(path, overwrite)
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


def _tflite_flatbuffer(model, quantize):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()
