"""TTM and WTTM: Zheng & Yang 2024, "Knowledge Distillation Based on
Transformed Teacher Matching" (ICLR 2024, arXiv:2402.11148); conventions of
the authors' code, zkxufo/TTM (`distiller_zoo/ttm.py`, `distiller_zoo/wttm.py`).

WTTM is TTM with a per-sample weight, so both live here."""

import math

import keras
from keras import ops

from keras_kd.checks.numbers import is_real
from keras_kd.checks.tensors import check_logit_pair, check_mask
from keras_kd.losses._dense import mean_over_positions
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.kd import _kd_positions
from keras_kd.losses.registry import register_term
from keras_kd.taps.views import LOGITS


def _check_gamma(value, what="gamma"):
    """γ as a float, or a clear error unless it is a finite number > 0."""
    if not is_real(value):
        raise TypeError(f"{what} must be a number (Python or NumPy), got {value!r} "
                        f"({type(value).__name__}).")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{what} must be a finite number > 0, got {value}. γ = 1/T is the power "
            "applied to the teacher's probabilities; the authors use γ in (0, 1), "
            "e.g. 0.1 (T = 10) or 0.2 (T = 5); γ = 1 is plain KL at T = 1.")
    return value


def _transformed_teacher(teacher_logits, student_logits, gamma, what):
    """`(g, s)`: g = γ·log_softmax(t), the log of p_tᵞ (softmax(g) is the
    transformed teacher, logsumexp(g) = log Σ_k p_tkᵞ), and the student's
    logits, both float32; the teacher gets no gradient."""
    t, s = check_logit_pair(teacher_logits, student_logits, what)
    return gamma * ops.log_softmax(ops.stop_gradient(t), axis=-1), s


def _per_sample(values, mask, what):
    if mask is not None:
        mask = check_mask(mask, values.shape, what)
    return mean_over_positions(values, mask)


def ttm_loss(teacher_logits, student_logits, gamma, mask=None):
    """Transformed Teacher Matching (Zheng & Yang, ICLR 2024), per sample.

    With p_t = softmax(t), the transformed teacher p̃ = p_tᵞ / Σ_k p_tkᵞ
    (the power transform; p̃ = softmax(t / T) with T = 1/γ) and the student
    at T = 1, q = softmax(s):

        ttm_b = KL(p̃_b ‖ q_b) = Σ_k p̃_bk · (log p̃_bk − log q_bk)

    The temperature is on the teacher's side only and there is no T²
    factor, as in the authors' `TTM.forward` (zkxufo/TTM
    `distiller_zoo/ttm.py`: `pow(softmax(y_t), l)` normalised, `kl_div` of
    `log_softmax(y_s)` summed over classes; their batch mean is the `TTM`
    class's reduction). Paper (§3): TTM = KD without the student's
    temperature, which adds a Rényi-entropy regulariser on the student.
    Computed in log space, p̃ = softmax(γ·log_softmax(t)), with KD's
    cancellation-free KL at T = 1 (`kd_loss`), so p_tᵞ never under- or
    overflows.

    Dense prediction: logits `(batch, H, W, classes)` are compared pixel by
    pixel; each sample's value is the mean over its valid pixels.

    Args:
        teacher_logits: `(batch, classes)` or `(batch, H, W, classes)`.
        student_logits: student logits of the same shape.
        gamma: γ > 0, the power of the transform (γ = 1/T). The authors'
            README runs TTM with γ = 0.1 and a loss weight of 45 beside the
            labels at 1 (vgg13 → vgg8 on CIFAR-100).
        mask: optional `(batch, H, W)` weights, 1 where a pixel counts.

    Returns:
        float32 values of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> [round(float(v), 4) for v in np.asarray(ttm_loss(t, s, gamma=0.5))]
    [0.1779, 0.5145]
    """
    gamma = _check_gamma(gamma, "TTM's gamma")
    g, s = _transformed_teacher(teacher_logits, student_logits, gamma, "ttm_loss")
    return _per_sample(_kd_positions(g, s, 1.0), mask, "ttm_loss")


def wttm_loss(teacher_logits, student_logits, gamma, mask=None):
    """Weighted TTM (Zheng & Yang, ICLR 2024), per sample.

    TTM's KL weighted by the power sum of the teacher's probabilities,
    U_γ(p_t) = Σ_k p_tkᵞ (larger for a smoother teacher; from 1 for a
    one-hot teacher up to C^(1−γ) for a uniform one, γ < 1):

        wttm_b = U_γ(p_t,b) · KL(p̃_b ‖ q_b),   p̃ = p_tᵞ / U_γ(p_t),  q = softmax(s)

    exactly as the authors' `WTTM.forward` (zkxufo/TTM
    `distiller_zoo/wttm.py`: `mean(norm * KL)` with `norm` the sum of
    `pow(softmax(y_t), l)`): the weight is used as is, not divided by its
    batch mean or sum, and it is a constant of the teacher (no gradient).
    U is computed as exp(logsumexp(γ·log_softmax(t))).

    Dense prediction: logits `(batch, H, W, classes)` are compared pixel by
    pixel (each pixel with its own weight); each sample's value is the mean
    over its valid pixels.

    Args:
        teacher_logits: `(batch, classes)` or `(batch, H, W, classes)`.
        student_logits: student logits of the same shape.
        gamma: γ > 0, the power of the transform (γ = 1/T). The authors'
            README runs WTTM with γ = 0.2 at a loss weight of 4.
        mask: optional `(batch, H, W)` weights, 1 where a pixel counts.

    Returns:
        float32 values of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> [round(float(v), 4) for v in np.asarray(wttm_loss(t, s, gamma=0.5))]
    [0.2626, 0.7715]
    """
    gamma = _check_gamma(gamma, "WTTM's gamma")
    g, s = _transformed_teacher(teacher_logits, student_logits, gamma, "wttm_loss")
    weight = ops.exp(ops.logsumexp(g, axis=-1))
    return _per_sample(weight * _kd_positions(g, s, 1.0), mask, "wttm_loss")


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class TTM(LogitLossWrapper):
    """Transformed Teacher Matching (Zheng & Yang 2024), see `ttm_loss`.

    The term is `ttm_loss` averaged over the batch with the batch's
    `sample_weight`; the Distiller adds the labels:
    `total = student_loss_weight · CE(y, s) + weight · mean_b KL(p̃_b ‖ q_b)`
    (the authors' `-r` is `student_loss_weight`, `-b` is `weight`). Dense
    logits are distilled pixel by pixel; with label maps in the batch,
    pixels labelled `ignore_index` (or negative) are left out.

    Args:
        gamma: γ > 0 (default 0.1, the authors' README command, with
            `weight=45`).
        weight: the term's weight (default 1).
        ignore_index: the label of ignored pixels (default -1).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.TTM(gamma=0.1, weight=45.0)],
        student_loss_weight=1.0)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, gamma=0.1, weight=1.0, ignore_index=-1, name="ttm", **kwargs):
        super().__init__(ttm_loss, {"gamma": _check_gamma(gamma, "TTM's gamma")},
                         weight=weight, ignore_index=ignore_index, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class WTTM(LogitLossWrapper):
    """Weighted Transformed Teacher Matching (Zheng & Yang 2024), see
    `wttm_loss`.

    The term is `wttm_loss` averaged over the batch with the batch's
    `sample_weight`: `total = student_loss_weight · CE(y, s) + weight ·
    mean_b U_γ(p_t,b) · KL(p̃_b ‖ q_b)`. Dense logits are distilled pixel by
    pixel; with label maps in the batch, pixels labelled `ignore_index` (or
    negative) are left out.

    Args:
        gamma: γ > 0 (default 0.2, the authors' README WTTM command, with
            `weight=4`).
        weight: the term's weight (default 1).
        ignore_index: the label of ignored pixels (default -1).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.WTTM(gamma=0.2, weight=4.0)],
        student_loss_weight=1.0)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, gamma=0.2, weight=1.0, ignore_index=-1, name="wttm", **kwargs):
        super().__init__(wttm_loss, {"gamma": _check_gamma(gamma, "WTTM's gamma")},
                         weight=weight, ignore_index=ignore_index, name=name, **kwargs)
