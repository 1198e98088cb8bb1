"""Logit standardization: Sun et al. 2024, "Logit Standardization in
Knowledge Distillation" (CVPR 2024, arXiv:2403.01427); conventions of the
authors' code, sunshangquan/logit-standardization-KD
(`normalize` in `mdistiller/distillers/KD.py` and `DKD.py`)."""

from keras import ops


def standardize_logits(logits):
    """Per-sample z-score of the logits over the class axis.

    With C classes, z the logits of one sample (one pixel for dense logits):

        mean = (1/C) Σ_k z_k
        std  = sqrt( Σ_k (z_k − mean)² / (C − 1) )      (unbiased, Bessel)
        ẑ    = (z − mean) / (1e-7 + std)

    exactly as the authors' `normalize` (torch's `Tensor.std`, whose default
    is the unbiased estimator, and an epsilon of 1e-7 added to the std, not
    to the variance). KD and DKD with `logit_standardization=True` apply it
    to both teacher and student logits and divide the result by the
    temperature afterwards, as that code does. Computed in float32. The
    variance is floored at 1e-30 inside the square root so that a sample
    with all-equal logits (ẑ = 0 either way) has a finite gradient.

    Args:
        logits: `(batch, classes)` or `(batch, ..., classes)`, classes >= 2.

    Returns:
        float32 logits of the same shape, zero mean and (up to the epsilon)
        unit unbiased standard deviation along the last axis.

    Example:

    >>> import numpy as np
    >>> z = standardize_logits(np.array([[1.0, 2.0, 3.0]]))
    >>> [round(float(v), 4) for v in np.asarray(z)[0]]
    [-1.0, 0.0, 1.0]
    """
    z = ops.cast(ops.convert_to_tensor(logits), "float32")
    classes = z.shape[-1] if len(z.shape) else None
    if classes is None or classes < 2:
        raise ValueError(
            "standardize_logits needs logits of shape (batch, classes) with a "
            f"static number of classes >= 2; got shape {tuple(z.shape)}."
        )
    centred = z - ops.mean(z, axis=-1, keepdims=True)
    variance = ops.sum(ops.square(centred), axis=-1, keepdims=True) / (classes - 1)
    std = ops.sqrt(ops.maximum(variance, 1e-30))
    return centred / (1e-7 + std)


