"""Checks of the data passed to `Distiller.fit` and `predict`, run before the
first step.

Static checks (shapes, dtypes, emptiness) read a `tf.data.Dataset`'s
`element_spec` and cardinality, never its elements; numpy arrays are also
checked for values (NaN/Inf inputs, labels out of range), which costs one
pass over arrays already in memory. The checks of each batch inside the
compiled step are in `keras_kd.checks.batches`.
"""

import keras
import numpy as np


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
    if x_shape is not None and _compatible(expected[1:], tuple(x_shape)):
        raise ValueError(
            f"The inputs have shape {tuple(x_shape)}, one sample without a batch axis, but the "
            f"student '{student.name}' takes batches {expected}. Batch the dataset "
            "(dataset.batch(32)) or add a batch axis to a single sample (x[None])."
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


_LABEL_KEYS = ("label", "labels", "y", "target", "targets", "class", "label_id")


def check_dict_inputs(student, spec):
    """A TFDS-style dict element ({"image": ..., "label": ...}) is all inputs to
    Keras: the label would be fed to the model. Name the map that fixes it."""
    keys = list(spec)
    try:
        names = [t.name for t in student.inputs]
        names += [layer.name for layer in student.layers
                  if isinstance(layer, keras.layers.InputLayer) and layer.name not in names]
    except (AttributeError, ValueError, TypeError):
        names = []
    labels = [k for k in keys if str(k).lower() in _LABEL_KEYS]
    if labels or not set(names) >= set(keys):
        features = [k for k in keys if k not in labels] or ["image"]
        label = labels[0] if labels else "label"
        raise ValueError(
            f"The dataset yields dicts with keys {keys}, which Keras feeds whole to the "
            f"student '{student.name}' (its inputs are named {names}), labels included. "
            f"Split each element into (inputs, labels): dataset.map(lambda d: "
            f"(d[{features[0]!r}], d[{label!r}])), or load TFDS with as_supervised=True."
        )


def check_sample_weight(sample_weight, count=None):
    """numpy sample weights: one finite, non-negative number per sample."""
    if sample_weight is None:
        return
    weights = np.asarray(sample_weight)
    if weights.ndim == 0 or weights.ndim > 2 or (weights.ndim == 2 and weights.shape[1] != 1):
        raise ValueError(
            f"sample_weight has shape {weights.shape}; it needs one weight per sample, "
            f"shape ({count if count is not None else 'batch'},) or (n, 1)."
        )
    if np.issubdtype(weights.dtype, np.number) and weights.size:
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                "sample_weight holds negative, NaN or Inf values (min "
                f"{np.nanmin(weights) if not np.all(np.isnan(weights)) else 'nan'}); a negative "
                "weight makes training maximize that sample's loss. Use weights >= 0 (0 drops "
                "a sample)."
            )


def check_label_container(y):
    """Labels as a Python list of numbers: Keras reads them as a structure of
    scalars and fails with 'tuple index out of range'."""
    if isinstance(y, (list, tuple)) and y and all(
            isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in y):
        raise TypeError(
            f"The labels are a Python {type(y).__name__} of {len(y)} numbers; Keras reads a "
            "list as one input per element. Pass a NumPy array: np.asarray(labels)."
        )


def check_label_dtype(dtype_name):
    if dtype_name is not None and ("string" in dtype_name or dtype_name in ("object", "str")):
        raise TypeError(
            f"The labels have dtype {dtype_name}; the student's loss needs numbers. Map "
            "class names to indices in the pipeline (keras.layers.StringLookup(vocabulary="
            "names, num_oov_indices=0) or a lookup table)."
        )


def check_fit_data(distiller, x, y=None, sample_weight=None, validation_data=None):
    """Runs the checks that apply to what was passed to `fit`."""
    import tensorflow as tf

    student, loss = distiller.student, distiller._student_loss_fn
    check_label_container(y)
    if isinstance(validation_data, (tuple, list)) and validation_data and isinstance(
            validation_data[0], np.ndarray):
        check_fit_data(distiller, *validation_data[:3])
    if isinstance(x, tf.data.Dataset):
        if int(x.cardinality()) == 0:
            raise ValueError("The training dataset is empty (cardinality 0): nothing to train on.")
        spec = x.element_spec
        parts = spec if isinstance(spec, tuple) else (spec,)
        x_spec = parts[0]
        if isinstance(x_spec, dict):
            check_dict_inputs(student, x_spec)
        if isinstance(x_spec, tf.RaggedTensorSpec):
            raise TypeError(
                f"The inputs are ragged ({x_spec}); the student '{student.name}' takes dense "
                "tensors. Pad or resize in the pipeline: dataset.map(lambda x, *rest: "
                "(x.to_tensor(), *rest)), or batch with padded_batch instead of ragged_batch."
            )
        if isinstance(x_spec, tf.TensorSpec):
            check_inputs(student, x_spec.shape, x_spec.dtype.name)
        if len(parts) > 1 and isinstance(parts[1], tf.TensorSpec):
            check_label_dtype(parts[1].dtype.name)
            if loss is not None:
                check_labels(student, parts[1].shape, parts[1].dtype.name, loss)
        if len(parts) > 2 and isinstance(parts[2], tf.TensorSpec):
            shape = tuple(parts[2].shape)
            if len(shape) > 2 or (len(shape) == 2 and shape[1] not in (None, 1)):
                raise ValueError(
                    f"The dataset's sample weights have shape {shape}; they need one weight "
                    "per sample, shape (batch,) or (batch, 1)."
                )
        return
    if isinstance(x, np.ndarray):
        if len(x) == 0:
            raise ValueError("The training inputs are empty (0 samples): nothing to train on.")
        check_inputs(student, x.shape, x.dtype.name)
        if isinstance(y, np.ndarray):
            check_label_dtype(y.dtype.name if y.dtype.kind not in "OSU" else "string")
        if isinstance(y, np.ndarray) and loss is not None:
            if len(y) != len(x):
                raise ValueError(f"{len(x)} inputs but {len(y)} labels: they must pair one to one.")
            check_labels(student, y.shape, y.dtype.name, loss)
        check_sample_weight(sample_weight, len(x))
        check_array_values(student, x, y if isinstance(y, np.ndarray) else None, loss)



def check_predict_data(student, x):
    """`predict` on unbatched data: Keras reads a (8, 8, 1) sample as a batch
    of 8 and returns one row per image row, without an error."""
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset) and isinstance(x.element_spec, tf.TensorSpec):
        check_inputs(student, x.element_spec.shape, x.element_spec.dtype.name)
    elif isinstance(x, np.ndarray):
        check_inputs(student, x.shape, x.dtype.name)
