"""Total variation distance, token by token, as a distillation divergence
(Wen et al., "f-Divergence Minimization for Sequence-Level Knowledge
Distillation", ACL 2023; DistiLLM's `tv_distance`, jongwooko/distillm,
distillm/losses.py)."""

import keras
from keras import ops

from keras_kd.checks.numbers import check_chunk_size, check_flag, check_temperature
from keras_kd.checks.tensors import check_logit_pair
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.registry import register_term
from keras_kd.losses._positions import position_values, reduce_positions
from keras_kd.taps.views import LOGITS


def _tvd_positions_and_gradients(t, s, temperature):
    """½·Σ|p − q|, p = softmax(t/T), q = softmax(s/T).

    With σ = sign(p − q) (0 where p = q), from ∂/∂p_k = σ_k/2 and
    ∂/∂q_k = −σ_k/2 through the softmaxes:

        ∂/∂t = p ⊙ (σ − Σ p·σ) / 2T,    ∂/∂s = −q ⊙ (σ − Σ q·σ) / 2T
    """
    p = ops.exp(ops.log_softmax(t / temperature, axis=-1))
    q = ops.exp(ops.log_softmax(s / temperature, axis=-1))
    value = 0.5 * ops.sum(ops.abs(p - q), axis=-1)

    def gradients(upstream):
        upstream = upstream[..., None] / (2.0 * temperature)
        sign = ops.sign(p - q)
        d_t = p * (sign - ops.sum(p * sign, axis=-1, keepdims=True))
        d_s = q * (ops.sum(q * sign, axis=-1, keepdims=True) - sign)
        return upstream * d_t, upstream * d_s

    return value, gradients


def tvd_loss(teacher_logits, student_logits, temperature=1.0, mask=None, per_position=False,
             chunk_size=None):
    """Total variation distance of each sample (or each position).

    With p = softmax(t / T) (teacher) and q = softmax(s / T) (student), at
    each position:

        tvd = ½ · Σ_k |p_k − q_k|      (in [0, 1], symmetric)

    A bounded f-divergence used for sequence-level distillation by Wen et
    al. (ACL 2023) and as a token-level baseline by DistiLLM (Ko et al.,
    ICML 2024). Follows DistiLLM's `tv_distance` (jongwooko/distillm,
    distillm/losses.py): `0.5 * |p_teacher − p_student|` summed over the
    vocabulary, its `labels != -100` mask as `mask` (its token mean over
    the batch is the mean of `per_position=True` values over the mask). It
    has no temperature (T = 1 here reproduces it); with T, both logits are
    divided by T, as TRL does, with no T² factor. The gradient of |x| at
    x = 0 is taken as 0, as both backends' autodiff does.

    Float32: finite for logits of any size; absolute error float32's
    (~1e-7), so the relative accuracy drops once the distance itself falls
    near 1e-6 (T far above the logits' spread).

    Args:
        teacher_logits: `(batch, vocab)` or `(batch, time, vocab)` teacher
            logits.
        student_logits: student logits of the same shape.
        temperature: T > 0 (default 1).
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
    >>> round(float(np.asarray(tvd_loss(t, s))[0]), 4)
    0.3257
    """
    temperature = check_temperature(temperature)
    chunk_size = check_chunk_size(chunk_size)
    t, s = check_logit_pair(teacher_logits, student_logits, "tvd_loss", cast=chunk_size is None)
    values = position_values(lambda a, b: _tvd_positions_and_gradients(a, b, temperature),
                             t, s, chunk_size, "tvd_loss")
    return reduce_positions(values, mask, check_flag(per_position, "per_position"), "tvd_loss")


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class TVD(LogitLossWrapper):
    """Token-level total variation distance; see `tvd_loss`.

    The term's value is each sample's mean over its valid positions,
    averaged over the batch with the batch's `sample_weight`. With labels of
    shape `(batch, time)`, positions whose label is `ignore_index` or
    negative (e.g. -100) are left out.

    Args:
        temperature: T > 0 (default 1).
        chunk_size: None (default) or the number of positions computed at a
            time, for large vocabularies.
        weight: the term's weight (default 1).
        ignore_index: the label of ignored positions (default -1; negative
            labels are always ignored).

    Example:

    ```python
    term = keras_kd.losses.TVD()
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, temperature=1.0, chunk_size=None, weight=1.0, ignore_index=-1,
                 name="tvd", **kwargs):
        super().__init__(
            tvd_loss,
            {"temperature": check_temperature(temperature),
             "chunk_size": check_chunk_size(chunk_size)},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
