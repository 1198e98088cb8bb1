"""Skew KL and skew reverse KL, token by token: Ko et al., "DistiLLM:
Towards Streamlined Distillation for Large Language Models" (ICML 2024,
arXiv:2402.03898), after the authors' `skewed_forward_kl` and
`skewed_reverse_kl` (jongwooko/distillm, distillm/losses.py)."""

import math

import keras
from keras import ops

from keras_kd.checks.numbers import (
    check_chunk_size,
    check_flag,
    check_fraction,
    check_kd_temperature,
)
from keras_kd.checks.tensors import check_logit_pair
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.kd import _kl_positions_and_gradients
from keras_kd.losses.registry import register_term
from keras_kd.losses._positions import position_values, reduce_positions
from keras_kd.taps.views import LOGITS

_ALPHA_HINT = (" At alpha = 1 the mixture is the anchor distribution itself and the loss is 0"
               " whatever the student does; DistiLLM uses alpha = 0.1.")


def _skew_positions_and_gradients(t, s, temperature, alpha):
    """KL(p ‖ α·p + (1−α)·q), p = softmax(t/T), q = softmax(s/T), 0 <= α < 1.

    With m = α·p + (1−α)·q, w = (1−α)·p·q/m and a = α·p/m (both in [0, 1]
    and taken from log space), from ∂/∂q_k = −(1−α)·p_k/m_k and
    ∂/∂p_k = log p_k + 1 − log m_k − a_k through the softmaxes:

        ∂/∂s = (q·Σw − w) / T
        ∂/∂t = p ⊙ (log p − log m − a − KL + Σ p·a) / T
    """
    log_p = ops.log_softmax(t / temperature, axis=-1)
    log_q = ops.log_softmax(s / temperature, axis=-1)
    if alpha == 0.0:
        log_m = log_q
    else:
        log_m = ops.logaddexp(log_p + math.log(alpha), log_q + math.log1p(-alpha))
    p = ops.exp(log_p)
    value = ops.sum(p * (log_p - log_m), axis=-1)

    def gradients(upstream):
        upstream = upstream[..., None]
        q = ops.exp(log_q)
        w = p * ops.exp(log_q - log_m + math.log1p(-alpha))
        d_s = (q * ops.sum(w, axis=-1, keepdims=True) - w) / temperature
        centred = log_p - log_m - value[..., None]
        if alpha != 0.0:
            a = ops.exp(log_p - log_m + math.log(alpha))
            centred = centred - a + ops.sum(p * a, axis=-1, keepdims=True)
        d_t = p * centred / temperature
        return upstream * d_t, upstream * d_s

    return value, gradients


def _skew_forward_positions_and_gradients(t, s, temperature, alpha):
    if alpha == 0.0:  # the forward KL, in KD's cancellation-free form
        return _kl_positions_and_gradients(t, s, temperature)
    return _skew_positions_and_gradients(t, s, temperature, alpha)


def _skew_reverse_positions_and_gradients(t, s, temperature, alpha):
    """KL(q ‖ α·q + (1−α)·p): the skew KL with the two sides swapped."""
    value, gradients = _skew_forward_positions_and_gradients(s, t, temperature, alpha)

    def swapped(upstream):
        d_s, d_t = gradients(upstream)
        return d_t, d_s

    return value, swapped


def skew_kl_loss(teacher_logits, student_logits, alpha=0.1, reverse=False, temperature=1.0,
                 mask=None, per_position=False, chunk_size=None):
    """DistiLLM's skew KL of each sample (or each position).

    With p = softmax(t / T) (teacher) and q = softmax(s / T) (student), at
    each position:

        reverse=False (SKL):   KL(p ‖ α·p + (1 − α)·q)
        reverse=True  (SRKL):  KL(q ‖ α·q + (1 − α)·p)

    The α share of the first distribution in the mixture keeps the log of
    the mixture away from log 0, which bounds the gradient (Ko et al.,
    ICML 2024, DistiLLM). α = 0 gives the forward and the reverse KL
    (computed then as `kd_loss`'s cancellation-free KL, without T²).

    Follows the authors' `skewed_forward_kl` and `skewed_reverse_kl`
    (jongwooko/distillm, distillm/losses.py): the mixtures
    `lam * p_teacher + (1 - lam) * p_student` and `(1 - lam) * p_teacher +
    lam * p_student`, default α (`--skew-alpha`) 0.1, their `labels !=
    -100` mask as `mask` (their token mean over the batch is the mean of
    `per_position=True` values over the mask). Where their code and the
    paper differ, this follows the paper: `skewed_forward_kl` returns the
    cross-entropy −Σ p·log m, i.e. the SKL plus the teacher's entropy, a
    constant for the student (same gradients, but not 0 when the student
    equals the teacher); this returns the KL. Their losses have no
    temperature (T = 1 here reproduces them); with T, both logits are
    divided by T, as TRL does, and there is no T² factor. The log-mixture
    is taken in log space (`logaddexp`), where their code takes
    `log(mixed_probs)` of probabilities.

    Float32 in log space: finite for logits of any size; absolute error
    float32's (~1e-7), so the relative accuracy drops once the divergence
    itself falls near 1e-6 (T far above the logits' spread).

    Args:
        teacher_logits: `(batch, vocab)` or `(batch, time, vocab)` teacher
            logits.
        student_logits: student logits of the same shape.
        alpha: 0 <= α < 1 (default 0.1), the skew.
        reverse: False for SKL (default), True for SRKL.
        temperature: 0 < T <= 1e15 (default 1).
        mask: optional weights of the positions' shape (`(batch, time)`),
            1 where a position counts, 0 where it is ignored.
        per_position: if True, return one value per position (masked ones
            exactly 0) instead of each sample's mean over its valid
            positions.
        chunk_size: None, or the number of positions computed at a time in
            the forward and the backward pass (same values and gradients).

    Returns:
        float32 values of shape `(batch,)`, or `teacher_logits.shape[:-1]`
        with `per_position=True`.

    Example:

    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.1]]); s = np.array([[1.0, 1.0, 1.0]])
    >>> [round(float(np.asarray(skew_kl_loss(t, s, alpha=0.1, reverse=r))[0]), 4)
    ...  for r in (False, True)]
    [0.2043, 0.2185]
    """
    alpha = check_fraction(alpha, "alpha", upper_open=True, hint=_ALPHA_HINT)
    reverse = check_flag(reverse, "reverse")
    temperature = check_kd_temperature(temperature)
    chunk_size = check_chunk_size(chunk_size)
    t, s = check_logit_pair(teacher_logits, student_logits, "skew_kl_loss",
                            cast=chunk_size is None)
    positions = (_skew_reverse_positions_and_gradients if reverse
                 else _skew_forward_positions_and_gradients)
    values = position_values(lambda a, b: positions(a, b, temperature, alpha),
                             t, s, chunk_size, "skew_kl_loss")
    return reduce_positions(values, mask, check_flag(per_position, "per_position"),
                            "skew_kl_loss")


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class SkewKL(LogitLossWrapper):
    """Token-level skew KL / skew reverse KL (DistiLLM); see `skew_kl_loss`.

    The term's value is each sample's mean over its valid positions,
    averaged over the batch with the batch's `sample_weight`. With labels of
    shape `(batch, time)`, positions whose label is `ignore_index` or
    negative (e.g. -100) are left out.

    Args:
        alpha: 0 <= α < 1 (default 0.1, the authors' `--skew-alpha`).
        reverse: False for SKL (default), True for SRKL.
        temperature: T > 0 (default 1).
        chunk_size: None (default) or the number of positions computed at a
            time, for large vocabularies.
        weight: the term's weight (default 1).
        ignore_index: the label of ignored positions (default -1; negative
            labels are always ignored).

    Example:

    ```python
    term = keras_kd.losses.SkewKL(alpha=0.1, reverse=True)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, alpha=0.1, reverse=False, temperature=1.0, chunk_size=None, weight=1.0,
                 ignore_index=-1, name="skew_kl", **kwargs):
        super().__init__(
            skew_kl_loss,
            {"alpha": check_fraction(alpha, "alpha", upper_open=True, hint=_ALPHA_HINT),
             "reverse": check_flag(reverse, "reverse"),
             "temperature": check_kd_temperature(temperature),
             "chunk_size": check_chunk_size(chunk_size)},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
