"""KD on the teacher's top-k classes plus one "rest" class.

A teacher cache with `top_k=k` (`keras_kd.teachers.caching.cache`) stores, per
sample and view, the k largest teacher logits, their class indices and, for
each temperature T asked for, the log of the teacher's remaining mass
`r_T = log Σ_{i ∉ S} exp(t_i / T)` (S: the teacher's top-k classes). FKD
(Shen & Xing, ECCV 2022) stores top-k soft labels the same way; this module
defines KD on that support exactly, for teacher and student alike.
"""

import keras
from keras import ops

from keras_kd.checks.numbers import check_temperature
from keras_kd.losses.base import DistillationLoss
from keras_kd.losses.registry import register_term
from keras_kd.taps.views import LOGITS

# Keys of a top-k teacher cache's outputs (beside any full feature taps).
TOPK_VALUES = "logits@topk_values"
TOPK_INDICES = "logits@topk_indices"
_REST_PREFIX = "logits@rest_lse@T="
_MASKED = -1e30  # "minus infinity" that keeps gradients finite


def rest_key(temperature):
    """The cache key of the teacher's rest log-mass at `temperature`."""
    return f"{_REST_PREFIX}{float(temperature)!r}"


def cached_temperatures(outputs):
    """The temperatures a top-k cache holds the rest mass for, sorted."""
    return sorted(float(k[len(_REST_PREFIX):]) for k in outputs if k.startswith(_REST_PREFIX))


def topk_summary(logits, k, temperatures):
    """`(values, indices, {T: rest_lse_T})` of `(batch, classes)` logits.

    `rest_lse_T = log Σ_{i ∉ top-k} exp(t_i / T)`, `-inf` when k = classes.
    """
    logits = ops.cast(logits, "float32")
    classes = int(logits.shape[-1])
    if not 1 <= k <= classes:
        raise ValueError(f"top_k must be in [1, {classes}] (the number of classes), got {k}.")
    values, indices = ops.top_k(logits, k)
    rest = {}
    in_top = ops.sum(ops.one_hot(indices, classes), axis=1) > 0
    for temperature in temperatures:
        if k == classes:
            rest[float(temperature)] = ops.full(ops.shape(logits)[:1], float("-inf"))
        else:
            scaled = ops.where(in_top, float("-inf"), logits / float(temperature))
            rest[float(temperature)] = ops.logsumexp(scaled, axis=-1)
    return values, ops.cast(indices, "int32"), rest


def topk_kd_loss(topk_values, topk_indices, rest_lse, student_logits, temperature=4.0):
    """T² · KL(p ‖ q) on the teacher's top-k classes plus one "rest" class,
    for each sample, shape `(batch,)` (`TopKKD` averages with `sample_weight`).

    With S the teacher's top-k classes (`topk_indices`), t_S their logits
    (`topk_values`), r = log Σ_{i∉S} exp(t_i/T) (`rest_lse`, cached) and s the
    student's full logits:

        Z_t = logaddexp(logsumexp(t_S / T), r)
        log p_i = t_i / T − Z_t                     (i ∈ S)
        log p_rest = r − Z_t
        log q_i = s_i / T − logsumexp(s / T)        (i ∈ S)
        log q_rest = logsumexp_{i∉S}(s_i / T) − logsumexp(s / T)
        loss = T² · [Σ_{i∈S} p_i (log p_i − log q_i) + p_rest (log p_rest − log q_rest)]

    The teacher's probabilities of the top-k classes are exact (r carries
    the normalizer), and both distributions merge the other classes into
    one, so the value is a lower bound of full KD (the KL of a coarsening)
    and equals it when k = classes (then p_rest = 0). Float32 throughout.

    Example:

    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.1]]); s = np.array([[1.0, 1.0, 1.0]])
    >>> v, i, r = topk_summary(t, 3, [2.0])
    >>> round(float(topk_kd_loss(v, i, r[2.0], s, temperature=2.0)[0]), 4)
    0.2895
    """
    temperature = check_temperature(temperature)
    t = ops.cast(topk_values, "float32") / temperature
    s = ops.cast(student_logits, "float32") / temperature
    rest = ops.cast(rest_lse, "float32")
    indices = ops.cast(topk_indices, "int32")
    classes = int(s.shape[-1])
    teacher_norm = ops.logaddexp(ops.logsumexp(t, axis=-1), rest)
    log_p = t - teacher_norm[:, None]
    log_p_rest = rest - teacher_norm
    student_norm = ops.logsumexp(s, axis=-1)
    log_q = ops.take_along_axis(s, indices, axis=-1) - student_norm[:, None]
    in_top = ops.sum(ops.one_hot(indices, classes), axis=1) > 0
    log_q_rest = ops.logsumexp(ops.where(in_top, _MASKED, s), axis=-1) - student_norm
    p_rest = ops.exp(log_p_rest)
    has_rest = p_rest > 0
    safe_log_p_rest = ops.where(has_rest, log_p_rest, 0.0)
    safe_log_q_rest = ops.where(has_rest, log_q_rest, 0.0)
    rest_term = ops.where(has_rest, p_rest * (safe_log_p_rest - safe_log_q_rest), 0.0)
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1) + rest_term
    return kl * (temperature**2)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class TopKKD(DistillationLoss):
    """KD on the teacher's top-k classes + a rest class, see `topk_kd_loss`.

    Fed by a top-k teacher cache (`teachers.cache(..., top_k=k,
    temperatures=[T])`), it reads the cached values; with a live teacher (or
    a full-logit cache) it takes the top-`k` of the teacher's logits itself,
    so cached and live training compute the same numbers. `k=None` with full
    logits is plain KD. Terms that need the teacher's full logits (KD, DKD,
    NKD, DIST, ...) refuse a top-k cache with an error naming this class.

    Args:
        temperature: T > 0 (default 4); a top-k cache must hold the rest
            mass at this T.
        k: the number of teacher classes kept with full logits (None: all).
        weight: the term's weight.
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)
    accepts_topk = True

    def __init__(self, temperature=4.0, k=None, weight=1.0, name="kd", **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        self.temperature = check_temperature(temperature)
        if k is not None and (isinstance(k, bool) or int(k) != k or k < 1):
            raise ValueError(f"TopKKD k must be a positive integer or None, got {k!r}.")
        self.k = None if k is None else int(k)

    def call(self, teacher, student, labels=None, training=None):
        if TOPK_VALUES in teacher:
            key = rest_key(self.temperature)
            if key not in teacher:
                raise ValueError(
                    f"TopKKD '{self.name}' runs at T={self.temperature} but the top-k teacher "
                    f"cache holds the rest mass only for T in {cached_temperatures(teacher)}; "
                    f"rebuild it with temperatures=[{self.temperature}] (or use one of those).")
            return topk_kd_loss(teacher[TOPK_VALUES], teacher[TOPK_INDICES], teacher[key],
                                student[LOGITS], self.temperature)
        logits = teacher[LOGITS]
        k = self.k or int(logits.shape[-1])
        values, indices, rest = topk_summary(logits, k, [self.temperature])
        return topk_kd_loss(values, indices, rest[self.temperature], student[LOGITS],
                            self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "k": self.k}


def check_cached_outputs(cached, taps, terms):
    """The cached teacher outputs, after checking they cover every term's taps.

    A top-k cache has no full logits: only terms with `accepts_topk`
    (`keras_kd.losses.TopKKD`) may read its logits; the others are refused.
    """
    topk = TOPK_VALUES in cached
    for term in terms:
        if topk and LOGITS in term.teacher_taps and not getattr(term, "accepts_topk", False):
            raise ValueError(
                f"The teacher cache stores only the top-{cached[TOPK_VALUES].shape[-1]} teacher "
                f"logits (and the rest mass at T in {cached_temperatures(cached)}), but term "
                f"'{term.name}' ({type(term).__name__}) needs the teacher's full logits. Use "
                "keras_kd.losses.TopKKD for KD on the top-k, or rebuild the cache with top_k=None.")
    missing = [tap for tap in taps if tap not in cached and not (topk and tap == LOGITS)]
    if missing:
        raise ValueError(
            f"The cached teacher outputs hold {sorted(cached)} but the terms need the teacher "
            f"taps {missing}. Rebuild the cache with "
            f"keras_kd.teachers.caching.cache(teacher, dataset, taps={list(taps)}).")
    return cached
