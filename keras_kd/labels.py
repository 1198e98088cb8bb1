"""Unlabeled samples and ignored pixels: integer labels < 0 (e.g. -1).

Two kinds of integer labels:
- per sample, shape `(batch,)` or `(batch, 1)`: a label < 0 marks an
  unlabeled sample (semi-supervised batches). It gets no hard-label loss and
  no compiled metrics; every distillation term still sees it.
- dense, one label per position, e.g. `(batch, H, W)` (or `(batch, H, W, 1)`)
  beside logits `(batch, H, W, classes)`: a label < 0 marks an ignored pixel
  (the convention of segmentation datasets with an "ignore" class). The hard
  loss and the metrics then average over the labeled pixels only, and the
  terms receive the labels as they are, so that dense terms (KD, DKD, NKD,
  DIST on dense logits) build their own pixel mask from them.

Labels are dense when they have one dimension fewer than the predictions
(after dropping a trailing 1) and at least two; without the predictions at
hand, when they have at least three dimensions.
"""

import keras
from keras import ops

from keras_kd.replicas import sum_over_replicas


def _is_integer(y):
    return "int" in keras.backend.standardize_dtype(y.dtype)


def _label_rank(y):
    shape = tuple(y.shape)
    if len(shape) >= 2 and shape[-1] == 1:
        return len(shape) - 1
    return len(shape)


def _rank(tensor):
    """The static rank, or None when even that is unknown (a pipeline's
    tensor of unknown shape)."""
    try:
        return len(tensor.shape)
    except (TypeError, ValueError):
        return None


def is_dense(y, predictions=None):
    """True for integer labels with one label per position (see the module
    docstring); False for per-sample labels, one-hot or float targets."""
    if isinstance(y, dict) or not _is_integer(y):
        return False
    rank = _label_rank(y)
    if predictions is not None and not isinstance(predictions, dict):
        return rank >= 2 and len(tuple(predictions.shape)) == rank + 1
    return rank >= 3


def _global_counts(count, total):
    """Sums both counts over the replicas of a tf.distribute strategy, so that
    N replicas average over the same labeled items as one device (on JAX the
    step already sees the global batch)."""
    count, replicas = sum_over_replicas(count)
    return count, total * float(replicas)


def mask_unlabeled(y, sample_weight, predictions=None):
    """Masks integer labels < 0 for the hard-label loss and the metrics.

    Returns `(labels, weight, scale)`: the labels with negatives replaced by
    0 (so a sparse loss can gather them), a weight that is 0 on the unlabeled
    samples (per-sample labels) or ignored pixels (dense labels) and carries
    `sample_weight`, and `scale` = items / labeled items, which turns Keras's
    "sum over batch size" reduction into a mean over the labeled ones (1 when
    all are labeled). Under a tf.distribute strategy both counts are global.
    Labels that are a dict (several outputs) or not integers pass unchanged.

    Example (dense):

    >>> import numpy as np
    >>> y = np.array([[[0, -1], [2, 1]]])          # (1, 2, 2), one ignored
    >>> logits = np.zeros((1, 2, 2, 3), "float32")
    >>> labels, weight, scale = mask_unlabeled(y, None, logits)
    >>> np.asarray(weight).tolist(), float(scale)
    ([[[1.0, 0.0], [1.0, 1.0]]], 1.3333333730697632)
    """
    if isinstance(y, dict) or not _is_integer(y):
        return y, sample_weight, 1.0
    y = ops.convert_to_tensor(y)
    labeled = ops.cast(ops.greater_equal(y, 0), "float32")
    if len(labeled.shape) >= 2 and labeled.shape[-1] == 1:
        labeled = ops.squeeze(labeled, axis=-1)  # (batch, 1) or (b, H, W, 1)
    if not is_dense(y, predictions):
        labeled = ops.reshape(labeled, (ops.shape(labeled)[0], -1))[:, 0]
    weight = labeled
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, "float32")
        if len(labeled.shape) == 1:
            # Per-sample labels: (batch,), (batch, 1) or a pipeline's
            # weights of unknown rank all become (batch,).
            sample_weight = ops.reshape(sample_weight, (-1,))
        elif _rank(sample_weight) == 1:
            # a per-sample weight spread over the sample's pixels
            sample_weight = ops.reshape(
                sample_weight, (-1,) + (1,) * (len(labeled.shape) - 1)
            )
        weight = weight * sample_weight
    count, total = _global_counts(
        ops.sum(labeled), ops.cast(ops.size(labeled), "float32")
    )
    scale = total / ops.maximum(count, 1.0)
    return ops.maximum(y, ops.zeros_like(y)), weight, scale


def term_labels(y, sample_weight, predictions=None):
    """Labels, per-sample weight and scale for a term that reads labels.

    Per-sample labels are masked as for the hard loss (unlabeled samples get
    weight 0 and the term averages over the labeled ones). Dense labels and
    dicts of labels pass unchanged: dense terms mask ignored pixels
    themselves from the -1 labels and return per-sample means.
    """
    if isinstance(y, dict) or is_dense(y, predictions):
        return y, sample_weight, 1.0
    return mask_unlabeled(y, sample_weight, predictions)
