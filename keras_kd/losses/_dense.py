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
