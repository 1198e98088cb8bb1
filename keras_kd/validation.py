"""Checks of the training data, run by `Distiller.fit` before the first step.

Static checks (shapes, dtypes, emptiness) read a `tf.data.Dataset`'s
`element_spec` and cardinality, never its elements; numpy arrays are also
checked for values (NaN/Inf inputs, labels out of range), which costs one
pass over arrays already in memory.
"""

import numpy as np


def _shape(tensor_like):
    shape = getattr(tensor_like, "shape", None)
    return None if shape is None else tuple(shape)


def _dtype_name(tensor_like):
    dtype = getattr(tensor_like, "dtype", None)
    return getattr(dtype, "name", str(dtype))


def _compatible(expected, got):
    if expected is None or got is None or len(expected) != len(got):
        return expected is None or got is None
    return all(e is None or g is None or e == g for e, g in zip(expected, got))


def check_inputs(student, x_shape, x_dtype):
    """Input shape (batch dim excluded) and dtype against the student's input."""
    try:
        expected = tuple(student.inputs[0].shape)
    except (AttributeError, ValueError, IndexError, TypeError):
        return
    if x_dtype is not None and not any(k in x_dtype for k in ("float", "int", "uint", "bool")):
        raise TypeError(
            f"The inputs have dtype {x_dtype}, but the student '{student.name}' takes "
            "numbers. Decode images/strings to numeric tensors in the pipeline "
            "(e.g. tf.io.decode_image, then tf.cast(image, tf.float32) / 255)."
        )
    if x_shape is not None and not _compatible(expected[1:], tuple(x_shape)[1:]):
        raise ValueError(
            f"The inputs have shape {tuple(x_shape)} but the student '{student.name}' takes "
            f"{expected} (batch first). Reshape or resize in the pipeline (e.g. x[..., None] "
            "to add a channel axis, keras.layers.Resizing for the image size)."
        )


def check_labels(student, y_shape, y_dtype, loss):
    """Sparse vs one-hot labels against the student's logits width."""
    if y_shape is None:
        return
    try:
        classes = int(student.outputs[0].shape[-1])
    except (AttributeError, ValueError, IndexError, TypeError):
        return
    sparse = type(loss).__name__ == "SparseCategoricalCrossentropy"
    dense = type(loss).__name__ == "CategoricalCrossentropy"
    rank = len(y_shape)
    if sparse and rank == 2 and y_shape[-1] not in (None, 1):
        raise ValueError(
            f"The labels have shape {tuple(y_shape)} (one-hot?) but the student loss is "
            "SparseCategoricalCrossentropy, which takes class indices of shape (batch,). "
            "Pass labels.argmax(-1), or compile(loss='categorical_crossentropy')."
        )
    if dense and (rank != 2 or (y_shape[-1] is not None and y_shape[-1] != classes)):
        raise ValueError(
            f"The labels have shape {tuple(y_shape)} but CategoricalCrossentropy needs one-hot "
            f"labels of shape (batch, {classes}) for the student '{student.name}'. Pass "
            "keras.utils.to_categorical(labels, num_classes) or compile(loss="
            "'sparse_categorical_crossentropy')."
        )


def check_array_values(student, x, y, loss):
    """NaN/Inf inputs and out-of-range sparse labels, for numpy arrays."""
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1) if len(x) else np.zeros(0, bool)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} input sample(s) contain NaN or Inf (first at index "
                f"{int(np.flatnonzero(bad)[0])}). Clean or drop them before fit: NaN inputs "
                "make every loss NaN."
            )
    if (isinstance(y, np.ndarray) and y.size
            and type(loss).__name__ == "SparseCategoricalCrossentropy"):
        try:
            classes = int(student.outputs[0].shape[-1])
        except (AttributeError, ValueError, IndexError, TypeError):
            return
        if np.issubdtype(y.dtype, np.floating):
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError(
                    "Sparse class labels must be whole numbers; these float labels are "
                    "not (fractions, NaN or Inf). Pass class indices, e.g. labels.astype('int32')."
                )
            if np.any(y < 0):
                raise ValueError(
                    "Float labels contain negative values; to mark unlabeled samples with -1, "
                    "pass integer labels (labels.astype('int32'))."
                )
        if np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating):
            high = int(y.max())
            low = int(y.min())
            if high >= classes or low < -1:
                raise ValueError(
                    f"Labels range over [{low}, {high}] but the student '{student.name}' has "
                    f"{classes} classes: valid labels are 0..{classes - 1}, and -1 for an "
                    "unlabeled sample."
                )


def check_fit_data(distiller, x, y=None):
    """Runs the checks that apply to what was passed to `fit`."""
    import tensorflow as tf

    student, loss = distiller.student, distiller._student_loss_fn
    if isinstance(x, tf.data.Dataset):
        if int(x.cardinality()) == 0:
            raise ValueError("The training dataset is empty (cardinality 0): nothing to train on.")
        spec = x.element_spec
        parts = spec if isinstance(spec, tuple) else (spec,)
        x_spec = parts[0]
        if isinstance(x_spec, tf.TensorSpec):
            check_inputs(student, x_spec.shape, x_spec.dtype.name)
        if len(parts) > 1 and isinstance(parts[1], tf.TensorSpec) and loss is not None:
            check_labels(student, parts[1].shape, parts[1].dtype.name, loss)
        return
    if isinstance(x, np.ndarray):
        if len(x) == 0:
            raise ValueError("The training inputs are empty (0 samples): nothing to train on.")
        check_inputs(student, x.shape, x.dtype.name)
        if isinstance(y, np.ndarray) and loss is not None:
            if len(y) != len(x):
                raise ValueError(f"{len(x)} inputs but {len(y)} labels: they must pair one to one.")
            check_labels(student, y.shape, y.dtype.name, loss)
        check_array_values(student, x, y if isinstance(y, np.ndarray) else None, loss)
