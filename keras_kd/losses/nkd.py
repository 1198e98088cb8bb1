"""NKD: Yang et al. 2023, "From Knowledge Distillation to Self-Knowledge
Distillation: A Unified Approach with Normalized Loss and Customized Soft
Labels" (ICCV 2023, arXiv:2303.13005); conventions of the authors' code
(`NKDLoss` in yzd-v/cls_KD)."""

import keras
from keras import ops

from keras_kd.losses._targets import non_target, target, target_rows
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.registry import register_term
from keras_kd.checks.numbers import check_ignore_index, check_temperature, check_weight
from keras_kd.losses._dense import dense_mask, mean_over_positions
from keras_kd.taps.views import LOGITS


def nkd_loss(
    teacher_logits, student_logits, labels, temperature=1.0, gamma=1.5, mask=None
):
    """Normalized Knowledge Distillation (Yang et al., ICCV 2023).

    With y the ground-truth class, t_¬y / s_¬y the C − 1 non-target logits,
    for each sample:

        target     = −softmax(t)_y · log_softmax(s)_y                 (T = 1)
        non-target = −γ · T² · Σ_k softmax(t_¬y / T)_k
                                  · log_softmax(s_¬y / T)_k
        nkd        = target + non-target

    One value per sample, as Keras's loss functions return; the `NKD` class
    averages them with the batch's `sample_weight` (the authors' loss is the
    batch mean).

    The non-target distributions are re-normalised over the non-target
    classes ("normalized loss"), as in the authors' `NKDLoss` (yzd-v/cls_KD):
    the target part uses no temperature and no T², the non-target part is a
    cross-entropy (not a KL: it differs from KL by the teacher's entropy, a
    constant for the student). Defaults T = 1, γ = 1.5 are the authors'.

    Dense prediction: logits `(batch, H, W, classes)` with labels
    `(batch, H, W)` are distilled pixel by pixel (each pixel's own target
    class); each sample's value is Σ_{mask = 1} nkd_pixel / max(#valid, 1).

    Args:
        teacher_logits: `(batch, classes)` or `(batch, H, W, classes)`.
        student_logits: student logits of the same shape.
        labels: int class indices `(batch,)` / `(batch, H, W)` (a trailing
            axis of 1 is allowed), or one-hot rows `(..., classes)` (argmax
            taken, as in the authors' code).
        temperature: T > 0 of the non-target part.
        gamma: γ >= 0, weight of the non-target part.
        mask: optional `(batch, H, W)` weights, 1 where a pixel counts and 0
            where it is ignored (its label may then be anything).

    Returns:
        float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> y = np.array([0, 1])
    >>> values = nkd_loss(t, s, y, temperature=1.0, gamma=1.5)
    >>> [round(float(v), 4) for v in np.asarray(values)]
    [1.9582, 3.214]
    """
    temperature = check_temperature(temperature)
    gamma = check_weight(gamma, "NKD's gamma")
    t, s, y, mask, batch = target_rows(
        teacher_logits, student_logits, labels, mask, "nkd_loss"
    )
    t = ops.stop_gradient(t)
    # Target part, at T = 1 and without T².
    t_target = target(ops.softmax(t, axis=-1), y)
    s_target = target(ops.log_softmax(s, axis=-1), y)
    loss_target = -t_target * s_target
    # Non-target part, over the C − 1 non-target logits, at T, times γ·T².
    t_soft = ops.softmax(non_target(t, y) / temperature, axis=-1)
    s_log = ops.log_softmax(non_target(s, y) / temperature, axis=-1)
    loss_non = -gamma * (temperature**2) * ops.sum(t_soft * s_log, axis=-1)
    values = loss_target + loss_non
    return mean_over_positions(ops.reshape(values, (batch, -1)), mask)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class NKD(LogitLossWrapper):
    """Normalized Knowledge Distillation (Yang et al. 2023), see `nkd_loss`.

    Dense logits `(batch, H, W, classes)` with label maps `(batch, H, W)`
    are distilled pixel by pixel; pixels labelled `ignore_index` (or any
    negative label) are left out of each sample's mean.

    Args:
        temperature: T > 0 of the non-target part (default 1).
        gamma: weight γ of the non-target part (default 1.5).
        weight: the term's weight (default 1).
        ignore_index: the label of ignored pixels in dense label maps
            (default -1).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.NKD(gamma=1.5)])
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)
    requires_labels = True

    def __init__(
        self,
        temperature=1.0,
        gamma=1.5,
        weight=1.0,
        ignore_index=-1,
        name="nkd",
        **kwargs,
    ):
        super().__init__(
            nkd_loss,
            {"temperature": check_temperature(temperature),
             "gamma": check_weight(gamma, "NKD's gamma")},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
