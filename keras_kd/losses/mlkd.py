"""MLKD: Jin, Wang & Lin 2023, "Multi-Level Logit Distillation" (CVPR 2023);
conventions of the authors' code, Jin-Ying/Multi-Level-Logit-Distillation
(`KD_ours` in `mdistiller/distillers/KD_ours.py`), and of its logit-
standardized form in sunshangquan/logit-standardization-KD (`MLKD` in
`mdistiller/distillers/MLKD.py`, Sun et al., CVPR 2024)."""

import keras
from keras import ops

from keras_kd.checks.numbers import check_flag, check_kd_temperature, is_real
from keras_kd.checks.tensors import check_logit_pair
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.kd import _kd_positions
from keras_kd.losses.logit_standardization import standardize_logits
from keras_kd.losses.registry import register_term
from keras_kd.taps.views import LOGITS

# The authors' temperatures: the configured one (4 on CIFAR-100, 1 on
# ImageNet), then 3, 5, 2 and 6, in the order of their code.
MLKD_TEMPERATURES = (4.0, 3.0, 5.0, 2.0, 6.0)
# The authors' `loss_kd_strong` takes its first three temperatures on the
# strong view and the others (2 and 6) on the weak view.
_STRONG_VIEW_TEMPERATURES = 3


def _check_temperatures(values):
    if is_real(values) or isinstance(values, str):
        raise TypeError(f"MLKD's temperatures must be a sequence of numbers such as "
                        f"(4, 3, 5, 2, 6), got {values!r}.")
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(f"MLKD's temperatures must be a sequence of numbers such as "
                        f"(4, 3, 5, 2, 6), got {values!r}.") from None
    if not values:
        raise ValueError("MLKD's temperatures must hold at least one temperature; the "
                         "authors use (4, 3, 5, 2, 6).")
    return tuple(check_kd_temperature(v) for v in values)


def _check_percentile(value):
    if value is None:
        return None
    if not is_real(value):
        raise TypeError(f"confidence_percentile must be None or a number in [0, 100], "
                        f"got {value!r}.")
    value = float(value)
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"confidence_percentile must be in [0, 100] (the authors use 50), "
                         f"got {value}.")
    return value


def _instance(t, s, temperature, standardize):
    """T² · mean_b KL(softmax(t_b/T) ‖ softmax(s_b/T)), KD's stable form."""
    if standardize:
        t, s = standardize_logits(t), standardize_logits(s)
    return ops.mean(_kd_positions(t, s, temperature))


def _correlations(t, s, temperature):
    """(‖PₜᵀPₜ − PₛᵀPₛ‖²/C, ‖PₜPₜᵀ − PₛPₛᵀ‖²/B) with P = softmax(logits/T)."""
    p_t = ops.softmax(t / temperature, axis=-1)
    p_s = ops.softmax(s / temperature, axis=-1)
    classes = p_s.shape[-1]
    batch = ops.cast(ops.shape(p_s)[0], "float32")
    class_gap = ops.matmul(ops.transpose(p_t), p_t) - ops.matmul(ops.transpose(p_s), p_s)
    batch_gap = ops.matmul(p_t, ops.transpose(p_t)) - ops.matmul(p_s, ops.transpose(p_s))
    return ops.sum(ops.square(class_gap)) / classes, ops.sum(ops.square(batch_gap)) / batch


def _kept_fractions(t, percentile):
    """The fractions of samples and of classes the authors' confidence masks
    keep, from the teacher's softmax at T = 1: samples whose top probability
    is <= its `percentile`-th percentile over the batch, classes whose
    summed probability is <= its percentile over the classes (`np.percentile`,
    linear interpolation, and `le`, as their code)."""
    p = ops.softmax(t, axis=-1)
    q = percentile / 100.0
    confidence = ops.max(p, axis=-1)
    class_confidence = ops.sum(p, axis=0)
    kept = ops.mean(ops.cast(confidence <= ops.quantile(confidence, q), "float32"))
    class_kept = ops.mean(
        ops.cast(class_confidence <= ops.quantile(class_confidence, q), "float32"))
    return kept, class_kept


def mlkd_loss(
    teacher_logits,
    student_logits,
    temperatures=MLKD_TEMPERATURES,
    logit_standardization=False,
    confidence_percentile=None,
    weak_strong=False,
    mask=None,
):
    """Multi-Level Logit Distillation (Jin et al., CVPR 2023): one scalar per batch.

    With B rows, C classes and, at temperature T, P_T = softmax(t/T) and
    Q_T = softmax(s/T) (`(B, C)` matrices of the teacher's and student's
    probabilities):

        instance_T = T² · (1/B) Σ_b KL(P_T,b ‖ Q_T,b)             (KD)
        class_T    = (1/C) · ‖P_Tᵀ P_T − Q_Tᵀ Q_T‖²_F        (C×C class correlation)
        batch_T    = (1/B) · ‖P_T P_Tᵀ − Q_T Q_Tᵀ‖²_F        (B×B batch correlation)
        mlkd       = Σ_{T in temperatures} instance_T + class_T + batch_T

    as the authors' `kd_loss`, `cc_loss` and `bc_loss` (`KD_ours.py`): the
    KL summed over classes and averaged over the batch, times T²; the
    squared differences of the correlation matrices summed and divided by
    C (class) and by B (batch), with no T². Their temperatures are the
    configured T₀ (4 on CIFAR-100, 1 on ImageNet) and 3, 5, 2, 6; each
    level is summed over them, unweighted (the paper's "prediction
    augmentation"). The class and batch parts compare the samples of the
    batch with each other, so the loss is one number per batch and a
    Distiller's `sample_weight` does not apply to it (as for DIST, RKD).
    The teacher gets no gradient.

    `logit_standardization=True` (Sun et al., CVPR 2024) z-scores both
    logits (`standardize_logits`) before the temperature in the instance
    parts only, as `MLKD.py` of the logit-standardization repo, whose
    `kd_loss` normalizes and whose `cc_loss`/`bc_loss` do not. They run it
    with T₀ = 2, i.e. temperatures (2, 3, 5, 2, 6), and a weight of 9 on
    the whole MLKD loss (`--logit-stand --base-temp 2 --kd-weight 9`).

    The authors' training code (not the loss above, which is the method)
    adds two things, both options here:

    - `confidence_percentile=p` (they use 50): confidence masks from the
      teacher's softmax at T = 1, m_b = [max_k P_bk <= the p-th percentile
      of the batch's] and c_k = [Σ_b P_bk <= the p-th percentile over the
      classes]. In their code these masks multiply losses already reduced
      to scalars (the `reduce=False` arguments are commented out), so they
      weight each part by the fraction they keep, m̄ = mean_b m_b and
      c̄ = mean_k c_k (about p/100 by construction): mlkd = Σ_T
      m̄·instance_T + c̄·class_T + m̄·batch_T. That is what is computed;
      no sample is left out.
    - `weak_strong=True`: every batch holds two views of the same B
      samples, the weakly augmented view in rows 0..B−1 and the strongly
      augmented view (RandAugment in their code) in rows B..2B−1. The
      masks come from the teacher's weak view; the value is the authors'
      `loss_kd + loss_cc + loss_bc`: the weak view's loss as above plus
      the strong view's instance parts, unmasked, at the first three
      temperatures, plus the weak view's at the others (their
      `loss_kd_strong` passes the weak logits at T = 2 and 6, apparently
      a slip, reproduced since it is what their results trained with).
      Their `loss_cc_strong` and `loss_bc_strong` are computed but not
      used, so there is no strong-view class or batch part.

    Feeding the two views to a Distiller: stack them along the batch axis
    in the input pipeline, e.g. with tf.data,
    `ds.batch(64).map(lambda x, y: (tf.concat([weak(x), strong(x)], 0),
    tf.concat([y, y], 0)))`, where `weak`/`strong` are your augmentations
    of the batch. The Distiller's hard-label loss then averages over both
    views, so `student_loss_weight = 2 × 0.1` reproduces their
    0.1·(CE_weak + CE_strong); the term's weight is their KD weight (0.9).
    A teacher cache that stores one row per sample does not fit this
    layout; evaluate with `evaluate_distillation=False` (the default) or
    two-view validation batches.

    Args:
        teacher_logits: `(batch, classes)` teacher logits (`(2B, classes)`
            with `weak_strong=True`).
        student_logits: student logits of the same shape.
        temperatures: a non-empty sequence of T > 0 (default (4, 3, 5, 2, 6)).
        logit_standardization: z-score the logits of the instance parts.
        confidence_percentile: None (no masks) or p in [0, 100] (the
            authors' 50): weight the parts by the kept fractions, above.
        weak_strong: the batch stacks a weak and a strong view, above.
        mask: must be None: MLKD compares whole `(batch, classes)` rows;
            dense logits `(batch, H, W, classes)` are not supported.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> round(float(mlkd_loss(t, s)), 4)
    4.7267
    >>> round(float(mlkd_loss(t, s, temperatures=(2.0,))), 4)  # one temperature
    0.9889
    """
    temperatures = _check_temperatures(temperatures)
    logit_standardization = check_flag(logit_standardization, "logit_standardization")
    percentile = _check_percentile(confidence_percentile)
    weak_strong = check_flag(weak_strong, "weak_strong")
    t, s = check_logit_pair(teacher_logits, student_logits, "mlkd_loss")
    if len(s.shape) != 2 or mask is not None:
        raise ValueError(
            "mlkd_loss compares the rows of (batch, classes) logits with each other (its "
            "batch and class correlations); got logits of shape "
            f"{tuple(s.shape)}{' and a mask' if mask is not None else ''}. Dense logits "
            "and position masks are not supported: pool dense logits to (batch, classes) "
            "first.")
    t = ops.stop_gradient(t)
    classes = s.shape[-1]
    if weak_strong:
        rows = s.shape[0]
        if rows is not None and rows % 2:
            raise ValueError(
                f"mlkd_loss(weak_strong=True) needs the weak and the strong view of each "
                f"sample stacked along the batch axis (2B rows); got {rows} rows.")
        t_views, s_views = ops.reshape(t, (2, -1, classes)), ops.reshape(s, (2, -1, classes))
        weak, strong = (t_views[0], s_views[0]), (t_views[1], s_views[1])
    else:
        weak = strong = (t, s)
    if percentile is None:
        kept = class_kept = 1.0
    else:
        kept, class_kept = _kept_fractions(weak[0], percentile)
    total = ops.zeros((), "float32")
    for index, temperature in enumerate(temperatures):
        class_part, batch_part = _correlations(*weak, temperature)
        instance = _instance(*weak, temperature, logit_standardization)
        total = total + kept * instance + class_kept * class_part + kept * batch_part
        if weak_strong:
            view = strong if index < _STRONG_VIEW_TEMPERATURES else weak
            total = total + _instance(*view, temperature, logit_standardization)
    return total


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class MLKD(LogitLossWrapper):
    """Multi-Level Logit Distillation (Jin et al. 2023), see `mlkd_loss`.

    The term returns one number per batch (its class and batch correlations
    compare the samples of the batch), so `sample_weight` does not apply to
    it, as for DIST and RKD. It reads `(batch, classes)` logits only.

    The authors' settings: CIFAR-100, temperatures (4, 3, 5, 2, 6), weight
    0.9 beside the labels at 0.1, 240 epochs; ImageNet, temperatures
    (1, 3, 5, 2, 6), weight 0.5 and labels at 0.5, 100 epochs; both with
    `weak_strong=True, confidence_percentile=50` on two stacked views (and
    `student_loss_weight` doubled, see `mlkd_loss`). With logit
    standardization (Sun et al. 2024): temperatures (2, 3, 5, 2, 6),
    weight 9, labels 0.1, 480 epochs. `keras_kd.zoo.recipes.recipe("mlkd")`
    and `recipe("mlkd_ls")` scale these to a run's length.

    Args:
        temperatures: the temperatures (default (4, 3, 5, 2, 6)).
        logit_standardization: z-score the logits of the instance (KD)
            parts (default False).
        confidence_percentile: None (default) or the authors' 50.
        weak_strong: batches stack a weak and a strong view (default False).
        weight: the term's weight (default 1).

    Example:

    ```python
    mlkd = keras_kd.losses.MLKD(weight=0.9)
    distiller = keras_kd.Distiller(teacher, student, losses=[mlkd], student_loss_weight=0.1)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(
        self,
        temperatures=MLKD_TEMPERATURES,
        logit_standardization=False,
        confidence_percentile=None,
        weak_strong=False,
        weight=1.0,
        name="mlkd",
        **kwargs,
    ):
        if "ignore_index" in kwargs:
            raise TypeError("MLKD reads (batch, classes) logits only, so it has no "
                            "ignore_index (dense logits are not supported).")
        super().__init__(
            mlkd_loss,
            {"temperatures": _check_temperatures(temperatures),
             "logit_standardization": check_flag(logit_standardization,
                                                 "logit_standardization"),
             "confidence_percentile": _check_percentile(confidence_percentile),
             "weak_strong": check_flag(weak_strong, "weak_strong")},
            weight=weight, name=name, **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.pop("ignore_index", None)
        config["temperatures"] = list(self.temperatures)
        return config
