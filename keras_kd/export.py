"""Export of a trained student for serving: SavedModel, `.keras`, TFLite."""

import os
import shutil

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


def _refuse_overwrite(path, overwrite):
    if not os.path.exists(path):
        return
    if not overwrite:
        raise FileExistsError(
            f"'{path}' already exists and was left untouched. Pass "
            "overwrite=True to replace it, or choose another path."
        )
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


QUANTIZATIONS = (None, "float16", "dynamic_int8")


def export_model(model, path, format=None, overwrite=False, verbose=False, quantize=None):
    """Writes `model` to `path` for serving and returns the path.

    Args:
        model: the (student) `keras.Model`.
        path: destination. A SavedModel is a directory.
        format: `"tf_saved_model"` (a `serving_default` signature, load with
            `tf.saved_model.load` or serve with TF Serving), `"keras"` or
            `"tflite"`; inferred from the path when None.
        overwrite: replace an existing file or directory.
        verbose: print Keras's export summary.
        quantize: TFLite only: None (float32), `"float16"` (weights stored in
            float16, ~half the size) or `"dynamic_int8"` (dynamic-range int8
            weights, ~a quarter of the size; activations stay float).
    """
    path = os.fspath(path)
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
            "keras_kd.export_model(keras.saving.load_model(path), 'student.tflite')."
        )
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} applies to TFLite export only, not {format!r}.")
    _refuse_overwrite(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if format == "keras":
        model.save(path)
    elif format == "tf_saved_model":
        model.export(path, format="tf_saved_model", verbose=verbose)
    else:
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        with open(path, "wb") as handle:
            handle.write(converter.convert())
    return path
