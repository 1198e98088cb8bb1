"""Logit distillation: Hinton et al. 2015, "Distilling the Knowledge in a
Neural Network" (arXiv:1503.02531)."""

import keras
from keras import ops

from keras_kd.losses.base import DistillationLoss, check_temperature
from keras_kd.losses.dense import (
    check_ignore_index,
    check_logit_pair,
    check_mask,
    dense_mask,
    mean_over_positions,
)
from keras_kd.taps import LOGITS


def _kd_positions(t, s, temperature):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) over the last axis."""
    # float32 and log_softmax: log(softmax(z)) underflows to -inf in float16.
    log_p_teacher = ops.log_softmax(t / temperature, axis=-1)
    log_p_student = ops.log_softmax(s / temperature, axis=-1)
    p_teacher = ops.exp(log_p_teacher)
    kl = ops.sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
    return kl * (temperature**2)


def kd_per_sample(teacher_logits, student_logits, temperature=4.0, mask=None):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) for each sample, shape (batch,).

    Dense logits `(batch, H, W, classes)` give the average over the
    positions where `mask` (shape `(batch, H, W)`, 1 = counts) is 1; see
    `kd_loss`.
    """
    temperature = check_temperature(temperature)
    t, s = check_logit_pair(teacher_logits, student_logits, "kd_loss")
    values = _kd_positions(t, s, temperature)
    if mask is not None:
        mask = check_mask(mask, values.shape, "kd_loss")
    return mean_over_positions(values, mask)


def kd_loss(teacher_logits, student_logits, temperature=4.0, mask=None):
    """Hinton's soft-target loss, averaged over the batch.

    Formula, with p = softmax(t / T) and q = softmax(s / T):

        kd = T² · mean_b Σ_k p_bk · (log p_bk − log q_bk)

    The T² factor keeps the gradient magnitudes of the soft term comparable to
    the hard-label term when T changes (Hinton et al. 2015, §2). Computed
    with `log_softmax` in float32, so it is exact under `mixed_float16` too.

    Dense prediction: logits of shape `(batch, H, W, classes)` are compared
    pixel by pixel; each sample's value is the mean over its valid pixels,
    Σ_{i: mask_bi = 1} kd_bi / max(Σ_i mask_bi, 1), and the loss is the mean
    of those over the batch.

    Args:
        teacher_logits: `(batch, classes)` or `(batch, H, W, classes)`
            teacher logits (before softmax).
        student_logits: student logits of the same shape, same classes in
            the same order.
        temperature: T > 0.
        mask: optional `(batch, H, W)` (or `(batch,)`) weights, 1 where a
            position counts, 0 where it is ignored. Default: all count.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.1]])
    >>> s = np.array([[1.0, 1.0, 1.0]])
    >>> round(float(kd_loss(t, s, temperature=2.0)), 4)
    0.2895
    """
    return ops.mean(
        kd_per_sample(teacher_logits, student_logits, temperature, mask)
    )


@keras.saving.register_keras_serializable(package="keras_kd")
class KD(DistillationLoss):
    """Hinton et al. 2015 soft-target distillation, see `kd_loss`.

    The Distiller mixes it with the hard-label loss:
    `total = student_loss_weight · CE(y, s) + weight · kd_loss(t, s, T)`.
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
        self, temperature=4.0, weight=1.0, ignore_index=-1, name="kd", **kwargs
    ):
        super().__init__(weight=weight, name=name, **kwargs)
        self.temperature = check_temperature(temperature)
        self.ignore_index = check_ignore_index(ignore_index)

    def call(self, teacher, student, labels=None, training=None):
        student_logits = student[LOGITS]
        mask = dense_mask(student_logits, labels, self.ignore_index)
        return kd_per_sample(
            teacher[LOGITS], student_logits, self.temperature, mask
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "ignore_index": self.ignore_index,
        }
