"""Reverse KL, KL(p_student ‖ p_teacher), token by token: the mode-seeking
divergence of language-model distillation (Gu et al., "MiniLLM: Knowledge
Distillation of Large Language Models", ICLR 2024; Agarwal et al.,
"On-Policy Distillation of Language Models: Learning from Self-Generated
Mistakes" (GKD), ICLR 2024, generalized JSD with beta = 1)."""

import keras

from keras_kd.checks.numbers import check_chunk_size, check_flag, check_kd_temperature
from keras_kd.checks.tensors import check_logit_pair
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.kd import _kl_positions_and_gradients
from keras_kd.losses.registry import register_term
from keras_kd.losses._positions import position_values, reduce_positions
from keras_kd.taps.views import LOGITS


def _reverse_kl_positions_and_gradients(t, s, temperature):
    """KL(softmax(s/T) ‖ softmax(t/T)): the forward KL with the two sides
    swapped, and so its gradients, swapped back."""
    value, gradients = _kl_positions_and_gradients(s, t, temperature)

    def swapped(upstream):
        d_s, d_t = gradients(upstream)
        return d_t, d_s

    return value, swapped


def reverse_kl_loss(teacher_logits, student_logits, temperature=1.0, mask=None,
                    per_position=False, chunk_size=None):
    """Reverse KL of each sample (or each position), KL(p_student ‖ p_teacher).

    With p = softmax(t / T) (teacher) and q = softmax(s / T) (student), at
    each position (a token of `(batch, time, vocab)` logits, or a sample of
    `(batch, vocab)` logits):

        rkl = Σ_k q_k · (log q_k − log p_k)

    The student is pulled towards the teacher's modes rather than made to
    cover all of its mass (Gu et al., ICLR 2024, MiniLLM; Agarwal et al.,
    ICLR 2024, GKD). Both logits are divided by T and there is no T²
    factor, as in TRL's `generalized_jsd_loss` (huggingface/trl,
    trl/experimental/gkd/gkd_trainer.py, branch beta = 1:
    `F.kl_div(teacher_log_probs, student_log_probs, log_target=True)`);
    DistiLLM's `reverse_kl` (jongwooko/distillm, distillm/losses.py) is the
    same at T = 1. Its value equals `generalized_jsd_loss(..., beta=1.0)`.

    Computed as `kd_loss`'s KL with the two sides swapped (log space, no
    cancellation, gradients written out), so it is exact in float32 at any
    T up to 1e15 and finite for logits of any size.

    Args:
        teacher_logits: `(batch, vocab)` or `(batch, time, vocab)` (any
            `(batch, ..., vocab)`) teacher logits.
        student_logits: student logits of the same shape.
        temperature: 0 < T <= 1e15 (default 1).
        mask: optional weights of the positions' shape (`(batch, time)`),
            1 where a position counts, 0 where it is ignored (padding,
            prompt tokens).
        per_position: if True, return one value per position (masked ones
            exactly 0) instead of each sample's mean over its valid
            positions.
        chunk_size: None, or the number of positions computed at a time in
            the forward and the backward pass, to bound the memory of large
            vocabularies (same values and gradients).

    Returns:
        float32 values of shape `(batch,)`, or `teacher_logits.shape[:-1]`
        with `per_position=True`.

    Example:

    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.1]]); s = np.array([[1.0, 1.0, 1.0]])
    >>> round(float(np.asarray(reverse_kl_loss(t, s))[0]), 4)
    0.2851
    """
    temperature = check_kd_temperature(temperature)
    chunk_size = check_chunk_size(chunk_size)
    t, s = check_logit_pair(teacher_logits, student_logits, "reverse_kl_loss",
                            cast=chunk_size is None)
    values = position_values(
        lambda a, b: _reverse_kl_positions_and_gradients(a, b, temperature),
        t, s, chunk_size, "reverse_kl_loss")
    return reduce_positions(values, mask, check_flag(per_position, "per_position"),
                            "reverse_kl_loss")


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class ReverseKL(LogitLossWrapper):
    """Token-level reverse KL, KL(p_student ‖ p_teacher); see `reverse_kl_loss`.

    The term's value is each sample's mean over its valid positions,
    averaged over the batch with the batch's `sample_weight`. With labels of
    shape `(batch, time)`, positions whose label is `ignore_index` or
    negative (e.g. -100 for padding and prompt tokens) are left out.

    Args:
        temperature: T > 0 (default 1).
        chunk_size: None (default) or the number of positions computed at a
            time, for large vocabularies.
        weight: the term's weight (default 1).
        ignore_index: the label of ignored positions (default -1; negative
            labels are always ignored).

    Example:

    ```python
    term = keras_kd.losses.ReverseKL(temperature=1.0, chunk_size=1024)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, temperature=1.0, chunk_size=None, weight=1.0, ignore_index=-1,
                 name="reverse_kl", **kwargs):
        super().__init__(
            reverse_kl_loss,
            {"temperature": check_kd_temperature(temperature),
             "chunk_size": check_chunk_size(chunk_size)},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
