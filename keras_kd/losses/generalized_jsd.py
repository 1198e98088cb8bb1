"""Generalized Jensen-Shannon divergence, token by token: Agarwal et al.,
"On-Policy Distillation of Language Models: Learning from Self-Generated
Mistakes" (GKD, ICLR 2024, arXiv:2306.13649, eq. 1), with the conventions of
TRL's `generalized_jsd_loss` (huggingface/trl,
trl/experimental/gkd/gkd_trainer.py)."""

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
from keras_kd.losses.reverse_kl import _reverse_kl_positions_and_gradients
from keras_kd.losses._positions import position_values, reduce_positions
from keras_kd.taps.views import LOGITS


def _mixture_positions_and_gradients(t, s, temperature, beta):
    """β·KL(p ‖ m) + (1−β)·KL(q ‖ m), m = β·p + (1−β)·q, for 0 < β < 1.

    log m = logaddexp(log p + log β, log q + log(1−β)), in log space. The
    gradients, from ∂/∂q_k = (1−β)(log q_k − log m_k) and
    ∂/∂p_k = β(log p_k − log m_k) through the softmaxes:

        ∂/∂t = (β/T)·p ⊙ (log p − log m − KL(p ‖ m))
        ∂/∂s = ((1−β)/T)·q ⊙ (log q − log m − KL(q ‖ m))
    """
    log_p = ops.log_softmax(t / temperature, axis=-1)
    log_q = ops.log_softmax(s / temperature, axis=-1)
    log_m = ops.logaddexp(log_p + math.log(beta), log_q + math.log1p(-beta))
    p, q = ops.exp(log_p), ops.exp(log_q)
    kl_p = ops.sum(p * (log_p - log_m), axis=-1)
    kl_q = ops.sum(q * (log_q - log_m), axis=-1)
    value = beta * kl_p + (1.0 - beta) * kl_q

    def gradients(upstream):
        upstream = upstream[..., None]
        d_t = (beta / temperature) * p * (log_p - log_m - kl_p[..., None])
        d_s = ((1.0 - beta) / temperature) * q * (log_q - log_m - kl_q[..., None])
        return upstream * d_t, upstream * d_s

    return value, gradients


def _jsd_positions_and_gradients(t, s, temperature, beta):
    if beta == 0.0:
        return _kl_positions_and_gradients(t, s, temperature)
    if beta == 1.0:
        return _reverse_kl_positions_and_gradients(t, s, temperature)
    return _mixture_positions_and_gradients(t, s, temperature, beta)


def generalized_jsd_loss(teacher_logits, student_logits, beta=0.5, temperature=1.0, mask=None,
                         per_position=False, chunk_size=None):
    """Generalized JSD of each sample (or each position), as in GKD and TRL.

    With p = softmax(t / T) (teacher), q = softmax(s / T) (student) and the
    mixture m = β·p + (1−β)·q, at each position:

        jsd_β = β · KL(p ‖ m) + (1 − β) · KL(q ‖ m)

    (Agarwal et al., ICLR 2024, eq. 1, teacher first). β = 0.5 is the
    Jensen-Shannon divergence. As β → 0 it behaves as β·KL(p ‖ q) and as
    β → 1 as (1−β)·KL(q ‖ p), so, as TRL does, β = 0 is defined as the
    forward KL(p ‖ q) (`kd_loss` without T²) and β = 1 as the reverse
    KL(q ‖ p) (`reverse_kl_loss`): the value jumps at both ends, on purpose.

    Follows TRL's `generalized_jsd_loss` (huggingface/trl,
    trl/experimental/gkd/gkd_trainer.py): both logits divided by T, no T²
    factor, log m = logsumexp(log q + log(1−β), log p + log β) in log space,
    the β = 0 / β = 1 special cases, and `beta * kl_teacher + (1 - beta) *
    kl_student`. TRL's `labels != -100` mask is `mask` here, and its
    "batchmean" (the sum over valid tokens / their number) is the mean of
    `per_position=True` values over the mask. DistiLLM's `js_distance` is a
    different parametrisation (its `lam` weighs the student in the mixture).

    Float32 in log space: finite for logits of any size; at β = 0 and β = 1
    exact at any T (KD's cancellation-free KL); otherwise its absolute error
    is float32's (~1e-7), so its relative accuracy drops once the
    divergence itself falls near 1e-6 (T far above the logits' spread).

    Args:
        teacher_logits: `(batch, vocab)` or `(batch, time, vocab)` teacher
            logits.
        student_logits: student logits of the same shape.
        beta: 0 <= β <= 1 (default 0.5), the teacher's share of the mixture.
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
    >>> [round(float(np.asarray(generalized_jsd_loss(t, s, beta=b))[0]), 4)
    ...  for b in (0.0, 0.5, 1.0)]
    [0.2519, 0.0645, 0.2851]
    """
    beta = check_fraction(beta, "beta", hint=" beta = 0 is the forward KL, beta = 1 the reverse KL.")
    temperature = check_kd_temperature(temperature)
    chunk_size = check_chunk_size(chunk_size)
    t, s = check_logit_pair(teacher_logits, student_logits, "generalized_jsd_loss",
                            cast=chunk_size is None)
    values = position_values(
        lambda a, b: _jsd_positions_and_gradients(a, b, temperature, beta),
        t, s, chunk_size, "generalized_jsd_loss")
    return reduce_positions(values, mask, check_flag(per_position, "per_position"),
                            "generalized_jsd_loss")


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class GeneralizedJSD(LogitLossWrapper):
    """Token-level generalized JSD (GKD, TRL); see `generalized_jsd_loss`.

    The term's value is each sample's mean over its valid positions,
    averaged over the batch with the batch's `sample_weight`. With labels of
    shape `(batch, time)`, positions whose label is `ignore_index` or
    negative (e.g. -100) are left out.

    Args:
        beta: 0 <= β <= 1 (default 0.5, TRL's `GKDConfig.beta`); 0 is the
            forward KL, 1 the reverse KL.
        temperature: T > 0 (default 1; TRL's GKD trainer calls the loss at
            T = 1, its `GKDConfig.temperature`, 0.9, is the sampling
            temperature of on-policy generation).
        chunk_size: None (default) or the number of positions computed at a
            time, for large vocabularies.
        weight: the term's weight (default 1).
        ignore_index: the label of ignored positions (default -1; negative
            labels are always ignored).

    Example:

    ```python
    term = keras_kd.losses.GeneralizedJSD(beta=0.5, chunk_size=1024)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, beta=0.5, temperature=1.0, chunk_size=None, weight=1.0,
                 ignore_index=-1, name="generalized_jsd", **kwargs):
        super().__init__(
            generalized_jsd_loss,
            {"beta": check_fraction(beta, "beta"),
             "temperature": check_kd_temperature(temperature),
             "chunk_size": check_chunk_size(chunk_size)},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
