"""Checks of the training data, run by `Distiller.fit` before the first step.

Static checks (shapes, dtypes, emptiness) read a `tf.data.Dataset`'s
`element_spec` and cardinality, never its elements; numpy arrays are also
checked for values (NaN/Inf inputs, labels out of range), which costs one
pass over arrays already in memory.
"""

import keras
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


def claim_terms(distiller, terms):
    """Marks each term as part of `distiller`; refuses a term owned by another.

    A term is a layer holding state that trains with its Distiller (adapters,
    the weight variable, the built shapes). Shared by a second Distiller it
    either fails inside its adapter at step 1 (other shapes) or silently
    starts from, and keeps training, the first one's adapter.
    """
    for term in terms:
        owner = getattr(term, "_keras_kd_owner", None)
        if owner is not None and owner != id(distiller):
            name = getattr(term, "_keras_kd_owner_name", "another Distiller")
            kind = type(term).__name__
            raise ValueError(
                f"The term '{term.name}' ({kind}) already belongs to the Distiller "
                f"'{name}': a term holds state that trains with its Distiller (adapters, "
                "its weight), so it cannot be shared. Create a new term for this "
                f"Distiller, e.g. {kind}(...) again or "
                f"{kind}.from_config(term.get_config()) for an untrained copy."
            )
    for term in terms:
        # object.__setattr__: plain bookkeeping, not a tracked layer attribute.
        object.__setattr__(term, "_keras_kd_owner", id(distiller))
        object.__setattr__(term, "_keras_kd_owner_name", distiller.name)


def label_classes(distiller):
    """The number of classes sparse labels index, or None when they do not.

    Sparse labels index the student's logits under
    SparseCategoricalCrossentropy, and under no compiled loss when a term
    reads labels (DKD, NKD). Binary or one-hot losses: None.
    """
    loss = distiller._student_loss_fn
    sparse = type(loss).__name__ == "SparseCategoricalCrossentropy"
    if loss is None:
        sparse = any(term.requires_labels for term in distiller.distillation_losses)
    if not sparse:
        return None
    try:
        return int(distiller.student.outputs[0].shape[-1])
    except (AttributeError, ValueError, IndexError, TypeError):
        return None


def check_batch(distiller, y, training):
    """The train/test step's one call: raises when labels are missing where
    they must be; returns `y` checked in-graph (`check_label_values`)."""
    if y is None:
        terms = distiller.distillation_losses
        if training and not terms:
            raise ValueError(
                "The training batches hold inputs only (no labels) and the Distiller has no "
                "distillation terms: there is nothing to learn from. Feed (x, y) batches or "
                "pass losses=[keras_kd.losses.KD(...)]."
            )
        if not training and not (distiller._evaluate_distillation and terms):
            raise ValueError(
                "evaluate() got inputs without labels, so there is no loss to report (it "
                "would be 0.0). Pass evaluate(x, y) or a dataset of (x, y) batches; to "
                "measure teacher-student agreement on unlabeled data, compile(..., "
                "evaluate_distillation=True): the loss is then the weighted sum of the "
                "label-free terms. For the student's outputs use predict(x)."
            )
        return y
    return check_label_values(y, label_classes(distiller))


def check_label_values(y, num_classes=None):
    """Returns `y`, made to depend on in-graph asserts that its values are valid.

    Always: float labels finite; integer labels >= -1 (-1 marks an unlabeled
    sample, any other negative is an error, not "unlabeled"). With
    `num_classes` (sparse labels): labels < num_classes, and float sparse
    labels whole and >= 0. The failure (InvalidArgumentError) names the
    offending value. A no-op outside TensorFlow.

    `tf.debugging` asserts run in graph mode (tf.function) but XLA drops
    them; under `jit_compile=True`, `Distiller.fit` checks tf.data labels in
    the input pipeline instead (`with_label_checks`).
    """
    if y is None or keras.backend.backend() != "tensorflow" or isinstance(y, dict):
        return y
    import tensorflow as tf

    if not tf.is_tensor(y):
        y = tf.convert_to_tensor(y)
    checks = []
    if y.dtype.is_floating:
        checks.append(tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(y)),
            ["keras-kd: the labels contain NaN or Inf; clean them in the pipeline. "
             "Batch labels:", y], summarize=8))
        if num_classes is not None:
            checks.append(tf.debugging.Assert(
                tf.reduce_all((y == tf.round(y)) & (y >= 0)),
                ["keras-kd: sparse class labels must be whole numbers >= 0 (pass integer "
                 "labels, -1 for unlabeled); found", tf.reduce_min(y), "in the batch labels",
                 y], summarize=8))
    if y.dtype.is_floating and num_classes is None or not (y.dtype.is_floating or y.dtype.is_integer):
        return _after(y, checks)
    low, high = tf.reduce_min(y), tf.reduce_max(y)
    empty = tf.equal(tf.size(y), 0)
    if y.dtype.is_integer:
        checks.append(tf.debugging.Assert(
            tf.logical_or(empty, low >= -1),
            ["keras-kd: label", low, "is negative; only -1 marks an unlabeled sample. "
             "Fix the labels in the pipeline."], summarize=8))
    if num_classes is not None:
        checks.append(tf.debugging.Assert(
            tf.logical_or(empty, tf.cast(high, tf.float64) < num_classes),
            ["keras-kd: label", high, f"is out of range for the student's {num_classes} "
             f"classes (valid: 0..{num_classes - 1}, -1 for unlabeled)."], summarize=8))
    return _after(y, checks)


def _after(y, checks):
    import tensorflow as tf

    checks = [op for op in checks if op is not None]  # eager asserts return None
    if not checks:
        return y
    with tf.control_dependencies(checks):
        return tf.identity(y)


def with_label_checks(distiller, data):
    """`data` with `check_label_values` mapped over it when the steps are
    XLA-compiled (where in-graph asserts are dropped); otherwise `data`."""
    if not distiller.jit_compile or keras.backend.backend() != "tensorflow":
        return data
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset):
        return data
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2 or isinstance(spec[1], dict):
        return data
    classes = label_classes(distiller)

    def checked(*batch):
        return (batch[0], check_label_values(batch[1], classes)) + batch[2:]

    return data.map(checked)
