"""Logit distillation: Hinton et al. 2015, "Distilling the Knowledge in a
Neural Network" (arXiv:1503.02531)."""

import math

import keras
from keras import ops

from keras_kd.checks.numbers import check_chunk_size, check_flag, check_kd_temperature
from keras_kd.checks.tensors import check_logit_pair
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.registry import register_term
from keras_kd.losses._positions import position_values, reduce_positions
from keras_kd.losses.logit_standardization import standardize_logits
from keras_kd.taps.views import LOGITS


# Rows whose KL is below this use the cancellation-free form; above it the
# direct Σ p (log p − log q) is accurate to float32 rounding already.
_STABLE_BELOW = 10.0
# |x| below which φ(x) = eˣ − 1 − x is a Taylor polynomial: truncation error
# x⁷/9! relative to x²/2, 4e-8 at 0.5. Above it p·eˣ − p − p·x loses at most
# 2·eps·eˣ/x² relative to rounding (8e-7 at 0.5).
_TAYLOR_BELOW = 0.5


def _phi_taylor(x):
    """(eˣ − 1 − x) / x² = Σ_k x^k / (k + 2)!, to x⁶ (Horner)."""
    coefficients = [1.0 / math.factorial(k + 2) for k in range(7)]
    result = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = c + x * result
    return result


def _log1p_ratio(value):
    """log(1 + S) / S, equal to 1 at S = 0 (series below 1e-3)."""
    series = 1.0 - value * (0.5 - value * (1 / 3 - value * 0.25))
    safe = ops.maximum(value, 1e-3)
    return ops.where(value < 1e-3, series, ops.log1p(safe) / safe)


def _kd_positions_and_gradients(t, s, temperature):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) over the last axis, stably.

    The direct form Σ p (log p − log q) loses everything to rounding once
    KL falls below float32's resolution of log p (about 1e-7): at T = 1e4 it
    is already 40% off and at T = 1e6 it goes negative. Write u = t − s and
    ū = u − E_p[u] (centred under the teacher's p), x = −ū / T. Then
    exactly

        KL = log E_p[e^x] = log(1 + S),   S = Σ_k p_k φ(x_k),  φ(x) = eˣ − 1 − x

    (E_p[x] = 0 adds the −x for free). Every p_k φ(x_k) is >= 0, so nothing
    cancels, and for small x the T² is absorbed without underflow:
    T² · p φ(x) = p ū² (1/2 + x/6 + x²/24 + …). Large-T limit (p → 1/C):
    T² · KL → (1/2C) Σ_k ū_k², logit matching with centred logits, as
    Hinton et al. note.

    The gradients are written out rather than traced through the branches
    above (a third of the ops, and exact at every T):

        ∂/∂t = p ⊙ ū,    ∂/∂s = T (q − p) = p ⊙ (T·(eˣ − 1) − T·S) / (1 + S)

    (log p − log q = ū/T + KL, so the teacher's side needs no softmax
    difference; the student's is taken in the cancellation-free form on the
    rows that use it, and as T (q − p) on the direct rows).
    """
    log_p = ops.log_softmax(t / temperature, axis=-1)
    log_q = ops.log_softmax(s / temperature, axis=-1)
    p = ops.exp(log_p)
    direct = ops.sum(p * (log_p - log_q), axis=-1)

    u = t - s
    u_bar = u - ops.sum(p * u, axis=-1, keepdims=True)
    x = -u_bar / temperature
    small = ops.abs(x) < _TAYLOR_BELOW
    # Each branch sees only inputs it is valid for, so none overflows.
    u_small = ops.where(small, u_bar, 0.0)
    x_small = ops.where(small, x, 0.0)
    x_large = ops.where(small, 1.0, x)
    scaled_small = p * ops.square(u_small) * _phi_taylor(x_small)  # T²·pφ
    # p·eˣ = q·e^KL: kept in log space; the clip only acts on rows where
    # KL > 10, which take the direct form.
    p_exp_large = ops.exp(ops.minimum(log_p + x_large, 40.0))
    large_term = p_exp_large - p - p * x_large
    other = ops.sum(ops.where(small, 0.0, large_term), axis=-1)
    other = ops.minimum(other, 1e5)  # S > 1e5 means KL > 11.5: direct rows
    small_sum = ops.sum(scaled_small, axis=-1)
    scaled = small_sum + (temperature**2) * other
    total = small_sum / (temperature**2) + other  # S
    stable_rows = direct < _STABLE_BELOW
    value = ops.where(stable_rows, scaled * _log1p_ratio(total), direct * (temperature**2))

    def gradients(upstream):
        upstream = upstream[..., None]
        # T·p·(eˣ − 1), with T·x = −ū: eˣ − 1 = x·(1 + x·φ(x)/x²) for small x,
        # from p·eˣ in log space else.
        t_p_expm1 = ops.where(small, -p * u_small * (1.0 + x_small * _phi_taylor(x_small)),
                              temperature * (p_exp_large - p))
        t_s = (small_sum / temperature + temperature * other)[..., None]  # T·S
        stable_grad = (t_p_expm1 - t_s * p) / (1.0 + total[..., None])
        direct_grad = temperature * (ops.exp(log_q) - p)
        student_grad = ops.where(stable_rows[..., None], stable_grad, direct_grad)
        return upstream * p * u_bar, upstream * student_grad

    return value, gradients


def _kl_positions_and_gradients(t, s, temperature):
    """KL(softmax(t/T) ‖ softmax(s/T)) without KD's T², and its gradients
    (those of `_kd_positions_and_gradients` over T²): exact at any T."""
    value, gradients = _kd_positions_and_gradients(t, s, temperature)
    scale = 1.0 / temperature**2
    return value * scale, lambda upstream: gradients(upstream * scale)


def _kd_positions(t, s, temperature):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) over the last axis, with the
    gradients of `_kd_positions_and_gradients`."""
    return position_values(lambda a, b: _kd_positions_and_gradients(a, b, temperature), t, s)


def kd_loss(
    teacher_logits,
    student_logits,
    temperature=4.0,
    mask=None,
    logit_standardization=False,
    per_position=False,
    chunk_size=None,
):
    """Hinton's soft-target loss of each sample, shape `(batch,)`.

    Formula, with p = softmax(t / T) and q = softmax(s / T), for sample b:

        kd_b = T² · Σ_k p_bk · (log p_bk − log q_bk)

    Like Keras's loss functions (`keras.losses.kl_divergence`) it returns
    one value per sample; the `KD` class averages them over the batch with
    the batch's `sample_weight`, as Keras's loss classes do.

    The T² factor keeps the gradient magnitudes of the soft term comparable to
    the hard-label term when T changes (Hinton et al. 2015, §2). Computed
    in float32 (exact under `mixed_float16` too) and without cancellation:
    with ū = (t − s) − E_p[t − s] and x = −ū/T, KL = log(1 + Σ_k p_k φ(x_k)),
    φ(x) = eˣ − 1 − x >= 0, and T²·p·φ(x) = p·ū²·(1/2 + x/6 + …) for small x.

    Valid range: 0 < T <= 1e15 (T² must be a finite float32). Against
    80-digit arithmetic the relative error per sample was below 4e-6 for
    T from 0.5 to 1e12, 2 to 100 classes and logits of scale 0.3 to 20
    (tests/losses/test_kd.py checks 1e-5 at T = 1 … 1e12). As T grows the loss tends to
    Hinton's logit matching, T²·KL → (1/2C)·Σ_k ū_k² with p uniform (ū the
    difference of the mean-centred logits), reached to float32 precision
    by T ≈ 1e6. The direct Σ p (log p − log q) in float32 was 40% off at
    T = 1e4 and negative at T = 1e6.

    Dense prediction and language models: logits of shape
    `(batch, H, W, classes)` or `(batch, time, vocab)` are compared position
    by position; each sample's value is the mean over its valid positions,
    Σ_{i: mask_bi = 1} kd_bi / max(Σ_i mask_bi, 1), or, with
    `per_position=True`, the values kd_bi themselves (0 where the mask is
    0), shape `(batch, time)`, for a token-level mean over the whole batch.
    At T = 1, kd_bi is the forward KL(p_teacher ‖ p_student) of TRL's
    `generalized_jsd_loss` with beta = 0 and of DistiLLM's `forward_kl`
    (which leaves out the teacher's entropy, a constant); see also
    `reverse_kl_loss`, `generalized_jsd_loss`, `skew_kl_loss`, `tvd_loss`.

    Args:
        teacher_logits: `(batch, classes)`, `(batch, time, vocab)` or
            `(batch, H, W, classes)` teacher logits (before softmax).
        student_logits: student logits of the same shape, same classes in
            the same order.
        temperature: 0 < T <= 1e15.
        mask: optional weights of the logits' shape without the class axis
            (`(batch, time)`, `(batch, H, W)`, `(batch,)`), 1 where a
            position counts, 0 where it is ignored. Default: all count.
        logit_standardization: if True, t and s are first replaced by
            `standardize_logits(t)` and `standardize_logits(s)` (Sun et al.,
            CVPR 2024), then divided by T. The authors run it with T = 2
            and a KD weight of 9 (`--logit-stand --base-temp 2 --kd-weight
            9`; plain KD there uses T = 4, weight 0.9).
        per_position: if True, return one value per position, shape
            `teacher_logits.shape[:-1]` (masked positions exactly 0),
            instead of one per sample.
        chunk_size: None, or a number of positions computed at a time in
            both the forward and the backward pass (which recomputes each
            chunk), so that the loss's temporaries hold `chunk_size × vocab`
            values rather than `positions × vocab`; the result and the
            gradients are the same. Needs a static batch size. The
            standardization of `logit_standardization` is applied to the
            whole logits before chunking.

    Returns:
        float32 values of shape `(batch,)`, or `teacher_logits.shape[:-1]`
        with `per_position=True`.

    Example:

    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    >>> [round(float(v), 4) for v in np.asarray(kd_loss(t, s, temperature=2.0))]
    [0.2895, 0.0]

    Token-level values of `(batch, time, vocab)` logits, in chunks of 2
    positions:

    >>> t3 = np.stack([t, t[::-1]]); s3 = np.stack([s, s])
    >>> np.round(np.asarray(kd_loss(t3, s3, 2.0, per_position=True, chunk_size=2)), 4)
    array([[0.2895, 0.    ],
           [0.    , 0.2895]], dtype=float32)
    """
    temperature = check_kd_temperature(temperature)
    chunk_size = check_chunk_size(chunk_size)
    t, s = check_logit_pair(teacher_logits, student_logits, "kd_loss",
                            cast=chunk_size is None or logit_standardization)
    if logit_standardization:
        t, s = standardize_logits(t), standardize_logits(s)
    values = position_values(
        lambda a, b: _kd_positions_and_gradients(a, b, temperature), t, s, chunk_size, "kd_loss")
    return reduce_positions(values, mask, check_flag(per_position, "per_position"), "kd_loss")


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class KD(LogitLossWrapper):
    """Hinton et al. 2015 soft-target distillation, see `kd_loss`.

    The term's value is `kd_loss` averaged over the batch (with the batch's
    `sample_weight`), and the Distiller mixes it with the hard-label loss:
    `total = student_loss_weight · CE(y, s) + weight · mean_b kd_loss(t, s, T)`.
    The exported student is untouched by T (it predicts at T = 1).

    Dense logits `(batch, H, W, classes)` are distilled pixel by pixel. When
    the batch has labels of shape `(batch, H, W)` (or `(batch, H, W, 1)`),
    pixels whose label is `ignore_index` or negative are left out of each
    sample's mean; the labels are read for this mask only (KD needs no
    labels, and without them every pixel counts).

    Args:
        temperature: T > 0 (default 4).
        weight: the term's weight (default 1).
        ignore_index: the label of ignored pixels in dense label maps
            (default -1; negative labels are always ignored).
        logit_standardization: z-score both logits per sample before the
            temperature (default False); see `kd_loss`.
        chunk_size: None (default), or the number of positions computed at
            a time, for the bounded memory of large vocabularies; see
            `kd_loss`.

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.KD(temperature=4)],
        student_loss_weight=0.1)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(
        self,
        temperature=4.0,
        weight=1.0,
        ignore_index=-1,
        logit_standardization=False,
        chunk_size=None,
        name="kd",
        **kwargs,
    ):
        super().__init__(
            kd_loss,
            {
                "temperature": check_kd_temperature(temperature),
                "logit_standardization": check_flag(
                    logit_standardization, "logit_standardization"),
                "chunk_size": check_chunk_size(chunk_size),
            },
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
