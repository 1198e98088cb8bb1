"""DIST: Huang et al. 2022, "Knowledge Distillation from A Stronger Teacher"
(NeurIPS 2022, arXiv:2205.10536); conventions of the authors' code,
hunto/image_classification_sota `lib/models/losses/dist_kd.py` (the
classification code that hunto/DIST_KD points to) and
hunto/DIST_KD `segmentation/losses/dist_kd.py` (dense logits)."""

import keras
from keras import ops

from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.registry import register_term
from keras_kd.checks.numbers import check_ignore_index, check_temperature, check_weight
from keras_kd.losses._dense import dense_mask
from keras_kd.checks.tensors import check_logit_pair, check_mask
from keras_kd.taps.views import LOGITS

# The authors' epsilon, added to the product of the two norms.
PEARSON_EPSILON = 1e-8


def _norm(x, axis):
    """‖x‖₂ along `axis`, with gradient 0 (not NaN) at x = 0, like torch."""
    squared = ops.sum(ops.square(x), axis=axis)
    positive = squared > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, squared, 1.0)), 0.0)


def _pearson(a, b, weights, axis):
    """Weighted Pearson correlation of a and b along `axis`.

    As the authors' `pearson_correlation`: each vector is centred by its
    mean, then ⟨a, b⟩ / (‖a‖·‖b‖ + 1e-8). `weights` (0/1, broadcastable)
    drops entries: they leave the mean and the sums.
    """
    count = ops.maximum(ops.sum(weights, axis=axis, keepdims=True), 1.0)
    a = (a - ops.sum(a * weights, axis=axis, keepdims=True) / count) * weights
    b = (b - ops.sum(b * weights, axis=axis, keepdims=True) / count) * weights
    return ops.sum(a * b, axis=axis) / (
        _norm(a, axis) * _norm(b, axis) + PEARSON_EPSILON
    )


def dist_relations(teacher_logits, student_logits, temperature=1.0, mask=None):
    """The two relation terms of DIST, `(inter, intra)`, before τ² and weights.

    See `dist_loss`. Returns two float32 scalars.
    """
    temperature = check_temperature(temperature)
    t, s = check_logit_pair(teacher_logits, student_logits, "dist_loss")
    classes = s.shape[-1]
    if mask is None:
        weights = ops.ones(ops.shape(s)[:-1], "float32")
    else:
        weights = check_mask(mask, tuple(s.shape[:-1]), "dist_loss")
    # Dense logits: one row per pixel, as the authors' segmentation code.
    y_t = ops.softmax(ops.reshape(ops.stop_gradient(t), (-1, classes)) / temperature)
    y_s = ops.softmax(ops.reshape(s, (-1, classes)) / temperature)
    weights = ops.reshape(ops.cast(weights > 0, "float32"), (-1, 1))
    count = ops.sum(weights)
    # Inter-class: per row (sample/pixel), across the classes.
    inter_corr = _pearson(y_s, y_t, ops.ones_like(y_s), axis=1)
    inter = ops.sum((1.0 - inter_corr) * weights[:, 0]) / ops.maximum(count, 1.0)
    # Intra-class: per class, across the valid rows; needs two rows.
    intra_corr = _pearson(y_s, y_t, weights, axis=0)
    intra = ops.where(count >= 2.0, 1.0 - ops.mean(intra_corr), 0.0)
    return inter, intra


def dist_loss(
    teacher_logits,
    student_logits,
    beta=1.0,
    gamma=1.0,
    temperature=1.0,
    mask=None,
):
    """DIST (Huang et al., NeurIPS 2022): match relations, not probabilities.

    With Y^t = softmax(t/τ), Y^s = softmax(s/τ), both (n, C), and
    ρ(a, b) = ⟨a − ā, b − b̄⟩ / (‖a − ā‖·‖b − b̄‖ + 1e-8) the Pearson
    correlation (ā the mean of a's entries):

        inter = 1 − (1/n) Σ_i ρ(Y^s_i,:, Y^t_i,:)     (rows: each sample's
                                                       class distribution)
        intra = 1 − (1/C) Σ_c ρ(Y^s_:,c, Y^t_:,c)     (columns: each class's
                                                       scores over the batch)
        dist  = τ² · (β · inter + γ · intra)

    As in the authors' `DIST` (epsilon 1e-8 added to the product of the
    norms, centring by the mean along the compared axis, τ² on both terms).
    Their defaults: β = γ = τ = 1 on ImageNet; τ = 4 with a loss weight of
    2 on CIFAR-100.

    Batch-dependent: the intra-class term compares the samples of a batch
    with each other, so the loss is one number per batch and a Distiller's
    `sample_weight` does not apply to it (as for RKD). With fewer than two
    valid samples the intra-class term is 0 (a correlation across one
    sample is undefined); the inter-class term, which compares each sample
    with its teacher, still counts.

    Dense prediction: logits `(batch, H, W, C)` are flattened to one row per
    pixel (as the authors' segmentation code), keeping only the pixels
    where `mask` is 1: the intra-class correlation then runs over all valid
    pixels of the batch.

    Args:
        teacher_logits: `(batch, C)` or `(batch, H, W, C)` teacher logits.
        student_logits: student logits of the same shape.
        beta: weight β >= 0 of the inter-class relation.
        gamma: weight γ >= 0 of the intra-class relation.
        temperature: τ > 0.
        mask: optional `(batch,)` / `(batch, H, W)` 0/1 weights of the rows.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> round(float(dist_loss(t, 2.0 * t)), 4)  # same ranking: small
    0.0014
    >>> round(float(dist_loss(t, -t)), 4)  # reversed: large
    3.8884
    """
    beta = check_weight(beta, "DIST's beta")
    gamma = check_weight(gamma, "DIST's gamma")
    temperature = check_temperature(temperature)
    inter, intra = dist_relations(teacher_logits, student_logits, temperature, mask)
    return (temperature**2) * (beta * inter + gamma * intra)


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class DIST(LogitLossWrapper):
    """DIST (Huang et al. 2022), see `dist_loss`.

    The term returns one number per batch (the intra-class relation compares
    the samples of the batch), so `sample_weight` does not apply to it, as
    for RKD, PKT and SP. A batch with a single sample gets no intra-class
    term. Dense logits `(batch, H, W, C)` are compared over their valid
    pixels: with label maps `(batch, H, W)` in the batch, pixels labelled
    `ignore_index` (or any negative label) are left out; labels are read
    for this mask only.

    Args:
        beta: weight of the inter-class relation (default 1).
        gamma: weight of the intra-class relation (default 1).
        temperature: τ > 0 (default 1, the authors' ImageNet setting; they
            use τ = 4 and a loss weight of 2 on CIFAR-100).
        weight: the term's weight (default 1).
        ignore_index: the label of ignored pixels (default -1).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.DIST(temperature=4.0, weight=2.0)])
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(
        self,
        beta=1.0,
        gamma=1.0,
        temperature=1.0,
        weight=1.0,
        ignore_index=-1,
        name="dist",
        **kwargs,
    ):
        super().__init__(
            dist_loss,
            {"beta": check_weight(beta, "DIST's beta"),
             "gamma": check_weight(gamma, "DIST's gamma"),
             "temperature": check_temperature(temperature)},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
