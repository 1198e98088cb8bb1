"""Helpers shared by the terms that treat the ground-truth class apart from
the rest (DKD, NKD): labels, target / non-target columns.

Every helper works on rows `(rows, classes)`; dense logits are flattened to
one row per position first (`target_rows`). Gathers use static shapes, so
the terms compile under XLA.
"""

from keras import ops

from keras_kd.checks.tensors import check_logit_pair, check_mask
from keras_kd.losses._dense import position_labels


def sparse_labels(labels, num_classes):
    """Integer class indices `(batch,)` from sparse or one-hot labels.

    Accepts `(batch,)` or `(batch, 1)` integers (or integer-valued floats),
    and `(batch, num_classes)` one-hot or soft label rows, whose argmax is
    taken (as the NKD authors' code does).
    """
    if labels is None:
        raise ValueError(
            "This loss needs the ground-truth labels; got labels=None. Feed "
            "(x, y) batches."
        )
    return position_labels(labels, (None, num_classes))


def target_rows(teacher_logits, student_logits, labels, mask, what):
    """Checks and flattens a DKD/NKD input to rows.

    Returns `(t, s, y, mask, batch)`: float32 logits `(rows, classes)`, int32
    labels `(rows,)`, the float32 mask (or None) and the batch size, where
    rows = batch for `(batch, classes)` logits and batch·H·W for dense
    `(batch, H, W, classes)` ones. Ignored positions (mask 0) get label 0 so
    that the values computed there are finite (they are then masked out).
    """
    t, s = check_logit_pair(teacher_logits, student_logits, what)
    classes = s.shape[-1]
    if classes < 2:
        raise ValueError(
            f"{what}: the logits have {classes} class; target/non-target "
            "distillation needs at least 2 classes."
        )
    if labels is None:
        raise ValueError(
            f"{what} needs the ground-truth labels; got labels=None. Feed "
            "(x, y) batches."
        )
    y = position_labels(labels, tuple(s.shape))
    if mask is not None:
        mask = check_mask(mask, tuple(s.shape[:-1]), what)
        y = ops.where(mask > 0, y, ops.zeros_like(y))
    batch = ops.shape(s)[0]
    t = ops.reshape(t, (-1, classes))
    s = ops.reshape(s, (-1, classes))
    return t, s, ops.reshape(y, (-1,)), mask, batch


def non_target(values, labels):
    """Drops each row's ground-truth column: `(rows, C)` -> `(rows, C-1)`.

    Row b keeps columns `[0, …, y_b − 1, y_b + 1, …, C − 1]` in order. The
    gather indices are `arange(C−1) + (arange(C−1) >= y_b)`, so the shapes are
    static (XLA-friendly).
    """
    classes = values.shape[-1]
    base = ops.expand_dims(ops.arange(classes - 1, dtype="int32"), 0)
    shift = ops.cast(
        ops.greater_equal(base, ops.expand_dims(labels, -1)), "int32"
    )
    return ops.take_along_axis(values, base + shift, axis=-1)


def target(values, labels):
    """`values[b, y_b]`, shape `(rows,)`."""
    picked = ops.take_along_axis(values, ops.expand_dims(labels, -1), axis=-1)
    return ops.squeeze(picked, axis=-1)


