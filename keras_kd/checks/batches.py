"""Checks of each batch inside the train/test step (`check_batch`), and of
tf.data labels in the input pipeline where XLA drops in-graph asserts.

Labels missing where they must be raise at trace time; label values, input
dims the data's static shape left unknown and sample weights are checked by
in-graph asserts the returned tensors depend on (TensorFlow only).
"""

import keras


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


def check_batch(distiller, x, y, sample_weight, training):
    """The train/test step's one call; returns `(x, y, sample_weight)`.

    Raises (at trace time) when labels are missing where they must be; the
    returned tensors depend on in-graph asserts of the label values
    (`check_label_values`), of the input shape where the data's static shape
    left it unknown (a generator of (None, None, None, 1) images) and of the
    sample weights (finite, >= 0).
    """
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
    else:
        y = check_label_values(y, label_classes(distiller))
    return check_input_shape(distiller.student, x), y, check_sample_weight_values(sample_weight)


def check_input_shape(student, x):
    """`x` after an in-graph check of the dims its static shape leaves unknown."""
    if keras.backend.backend() != "tensorflow" or isinstance(x, (dict, list, tuple)):
        return x
    import tensorflow as tf

    try:
        expected = tuple(student.inputs[0].shape)
    except (AttributeError, ValueError, IndexError, TypeError):
        return x
    if not tf.is_tensor(x) or x.shape.rank != len(expected):
        return x
    unknown = [i for i, (got, want) in enumerate(zip(x.shape, expected))
               if i > 0 and got is None and want is not None]
    if not unknown:
        return x
    shape = tf.shape(x)
    want = tf.constant([expected[i] for i in unknown], dtype=shape.dtype)
    check = tf.debugging.Assert(
        tf.reduce_all(tf.gather(shape, unknown) == want),
        ["keras-kd: the batch has input shape", shape, f"but the student '{student.name}' "
         f"takes {expected} (batch first). Resize or reshape in the pipeline."], summarize=8)
    return _after(x, [check])


def check_sample_weight_values(sample_weight):
    """`sample_weight` after in-graph asserts that it is finite and >= 0."""
    if sample_weight is None or keras.backend.backend() != "tensorflow":
        return sample_weight
    import tensorflow as tf

    if not tf.is_tensor(sample_weight) or not sample_weight.dtype.is_floating:
        return sample_weight
    check = tf.debugging.Assert(
        tf.reduce_all(tf.math.is_finite(sample_weight) & (sample_weight >= 0)),
        ["keras-kd: sample weights must be finite and >= 0 (a negative weight maximizes "
         "that sample's loss); found min", tf.reduce_min(sample_weight)], summarize=8)
    return _after(sample_weight, [check])


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
    # Compared as float64: uint8 labels (TFDS, MNIST) cannot hold -1.
    low = tf.cast(tf.reduce_min(y), tf.float64)
    high = tf.cast(tf.reduce_max(y), tf.float64)
    empty = tf.equal(tf.size(y), 0)
    if y.dtype.is_integer:
        checks.append(tf.debugging.Assert(
            tf.logical_or(empty, low >= -1.0),
            ["keras-kd: label", tf.cast(low, tf.int64), "is negative; only -1 marks an unlabeled sample. "
             "Fix the labels in the pipeline."], summarize=8))
    if num_classes is not None:
        checks.append(tf.debugging.Assert(
            tf.logical_or(empty, high < float(num_classes)),
            ["keras-kd: label", tf.cast(high, tf.int64) if y.dtype.is_integer else high, f"is out of range for the student's {num_classes} "
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

