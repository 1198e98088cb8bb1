"""Dense prediction for the logit terms: one logit vector per pixel.

Logits of shape `(batch, H, W, classes)` (or any `(batch, ..., classes)`)
are compared position by position; each sample's value is the average over
its *valid* positions, so the terms still return one value per sample and
the Distiller's `sample_weight` keeps its meaning:

    value_b = Σ_{valid positions i of b} loss_bi / max(#valid_b, 1)

A mask marks the valid positions (1 = counts, 0 = ignored, e.g. the
"void" pixels of a segmentation label map). A sample with no valid position
contributes 0. Everything has static shapes, so it compiles under XLA.
"""

from keras import ops


def check_logit_pair(teacher_logits, student_logits, what):
    """Both logits as float32, after checking their shapes agree.

    Accepts `(batch, classes)` or dense `(batch, ..., classes)` logits with a
    static number of classes; float32 so that softmax and logs stay exact
    under `mixed_float16`.
    """
    t = ops.cast(ops.convert_to_tensor(teacher_logits), "float32")
    s = ops.cast(ops.convert_to_tensor(student_logits), "float32")
    if len(s.shape) < 2 or s.shape[-1] is None:
        raise ValueError(
            f"{what}: logits must have shape (batch, classes) or (batch, H, "
            f"W, classes) with a static number of classes; got student "
            f"logits of shape {tuple(s.shape)}."
        )
    if len(t.shape) != len(s.shape) or t.shape[-1] != s.shape[-1]:
        raise ValueError(
            f"{what}: teacher logits {tuple(t.shape)} and student logits "
            f"{tuple(s.shape)} must have the same rank and the same number "
            "of classes (the same classes in the same order)."
        )
    return t, s


def check_ignore_index(value):
    """Returns `value` as an int, or raises a TypeError naming the fix."""
    if isinstance(value, bool):
        raise TypeError(f"ignore_index must be an integer label, got {value!r}.")
    try:
        as_int = int(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"ignore_index must be an integer label (e.g. -1 or 255), got "
            f"{value!r}."
        ) from None
    if as_int != value:
        raise TypeError(f"ignore_index must be a whole number, got {value!r}.")
    return as_int


def position_labels(labels, logits_shape):
    """Integer labels of shape `logits_shape[:-1]` from the accepted forms.

    `logits_shape` is the static shape `(batch, ..., classes)`. Accepted:
    integer labels of shape `(batch, ...)` or `(batch, ..., 1)`, or one-hot /
    soft rows `(batch, ..., classes)`, whose argmax is taken (as the NKD
    authors' code does). Raises a ValueError naming both shapes otherwise.
    """
    labels = ops.convert_to_tensor(labels)
    classes = logits_shape[-1]
    positions = len(logits_shape) - 1  # rank of (batch, ...)
    rank = len(labels.shape)
    if rank == positions + 1 and labels.shape[-1] == classes and classes > 1:
        return ops.cast(ops.argmax(labels, axis=-1), "int32")
    if rank == positions + 1 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
        rank = positions
    mismatch = rank != positions or any(
        a is not None and b is not None and a != b
        for a, b in zip(labels.shape, logits_shape[:-1])
    )
    if mismatch:
        spatial = ", ".join(str(d) for d in logits_shape[1:-1])
        spatial = f", {spatial}" if spatial else ""
        raise ValueError(
            f"Labels must be class indices of shape (batch{spatial}) or "
            f"(batch{spatial}, 1), or one-hot rows of shape "
            f"(batch{spatial}, {classes}), to match logits of shape "
            f"{tuple(logits_shape)}; got labels of shape {tuple(labels.shape)}."
        )
    return ops.cast(labels, "int32")


def label_mask(labels, logits_shape, ignore_index=-1):
    """The valid-position mask `(labels != ignore_index) & (labels >= 0)`.

    `labels` is any form `position_labels` accepts; for one-hot rows, a row
    of zeros marks an ignored position. Returns float32 of shape
    `logits_shape[:-1]`.
    """
    labels = ops.convert_to_tensor(labels)
    classes = logits_shape[-1]
    positions = len(logits_shape) - 1
    if (
        len(labels.shape) == positions + 1
        and labels.shape[-1] == classes
        and classes > 1
    ):
        return ops.cast(
            ops.greater(ops.sum(ops.cast(labels, "float32"), axis=-1), 0.0),
            "float32",
        )
    y = position_labels(labels, logits_shape)
    valid = ops.logical_and(
        ops.not_equal(y, ignore_index), ops.greater_equal(y, 0)
    )
    return ops.cast(valid, "float32")


def dense_mask(logits, labels, ignore_index=-1):
    """The mask a term builds for dense logits, or None.

    None for `(batch, classes)` logits or without labels (every position
    counts); otherwise `label_mask(labels, logits.shape, ignore_index)`.
    """
    if labels is None or len(logits.shape) <= 2:
        return None
    return label_mask(labels, tuple(logits.shape), ignore_index)


def check_mask(mask, values_shape, what):
    """Casts `mask` to float32 and checks it has the positions' shape."""
    mask = ops.cast(ops.convert_to_tensor(mask), "float32")
    if len(mask.shape) != len(values_shape) or any(
        m is not None and v is not None and m != v
        for m, v in zip(mask.shape, values_shape)
    ):
        raise ValueError(
            f"{what}: the mask must have the shape of the logits without "
            f"their class axis, {tuple(values_shape)}; got "
            f"{tuple(mask.shape)}. Use 1 for positions that count and 0 for "
            "ignored ones."
        )
    return mask


def mean_over_positions(values, mask=None):
    """One value per sample from per-position values `(batch, ...)`.

    Without a mask: the mean over positions (the identity for `(batch,)`).
    With a mask: Σ values·mask / max(Σ mask, 1) per sample, so ignored
    positions, and samples with no valid position, add nothing. Masked
    values must be finite (0 · inf is NaN): callers replace ignored labels
    by a valid class before computing them.
    """
    if mask is None and len(values.shape) == 1:
        return values
    batch = ops.shape(values)[0]
    values = ops.reshape(values, (batch, -1))
    if mask is None:
        return ops.mean(values, axis=-1)
    mask = ops.reshape(ops.cast(mask, values.dtype), (batch, -1))
    total = ops.sum(values * mask, axis=-1)
    return total / ops.maximum(ops.sum(mask, axis=-1), 1.0)
