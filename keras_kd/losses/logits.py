"""Logit distillation: Hinton et al. 2015, "Distilling the Knowledge in a
Neural Network" (arXiv:1503.02531)."""

import keras
from keras import ops

from keras_kd.losses.base import DistillationLoss, check_temperature
from keras_kd.taps import LOGITS


def _soft_log_probs(logits, temperature):
    # float32 and log_softmax: log(softmax(z)) underflows to -inf in float16.
    return ops.log_softmax(ops.cast(logits, "float32") / temperature, axis=-1)


def kd_per_sample(teacher_logits, student_logits, temperature=4.0):
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) for each sample, shape (batch,)."""
    temperature = check_temperature(temperature)
    log_p_teacher = _soft_log_probs(teacher_logits, temperature)
    log_p_student = _soft_log_probs(student_logits, temperature)
    p_teacher = ops.exp(log_p_teacher)
    kl = ops.sum(p_teacher * (log_p_teacher - log_p_student), axis=-1)
    return kl * (temperature**2)


def kd_loss(teacher_logits, student_logits, temperature=4.0):
    """Hinton's soft-target loss, averaged over the batch.

    Formula, with p = softmax(t / T) and q = softmax(s / T):

        kd = T² · mean_b Σ_k p_bk · (log p_bk − log q_bk)

    The T² factor keeps the gradient magnitudes of the soft term comparable to
    the hard-label term when T changes (Hinton et al. 2015, §2). Computed
    with `log_softmax` in float32, so it is exact under `mixed_float16` too.

    Args:
        teacher_logits: `(batch, classes)` teacher logits (before softmax).
        student_logits: `(batch, classes)` student logits, same classes in the
            same order.
        temperature: T > 0.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> t = np.array([[2.0, 1.0, 0.1]])
    >>> s = np.array([[1.0, 1.0, 1.0]])
    >>> round(float(kd_loss(t, s, temperature=2.0)), 4)
    0.2895
    """
    return ops.mean(kd_per_sample(teacher_logits, student_logits, temperature))


@keras.saving.register_keras_serializable(package="keras_kd")
class KD(DistillationLoss):
    """Hinton et al. 2015 soft-target distillation, see `kd_loss`.

    The Distiller mixes it with the hard-label loss:
    `total = student_loss_weight · CE(y, s) + weight · kd_loss(t, s, T)`.
    The exported student is untouched by T (it predicts at T = 1).

    Args:
        temperature: T > 0 (default 4).
        weight: the term's weight (default 1).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.KD(temperature=4)],
        student_loss_weight=0.1)
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)

    def __init__(self, temperature=4.0, weight=1.0, name="kd", **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        self.temperature = check_temperature(temperature)

    def call(self, teacher, student, labels=None, training=None):
        return kd_per_sample(
            teacher[LOGITS], student[LOGITS], self.temperature
        )

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
