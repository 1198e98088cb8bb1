"""Logit distillation that treats the ground-truth class apart from the rest.

- DKD: Zhao et al. 2022, "Decoupled Knowledge Distillation" (CVPR 2022,
  arXiv:2203.08679); conventions of the authors' code, mdistiller
  (`mdistiller/distillers/DKD.py`).
- NKD: Yang et al. 2023, "From Knowledge Distillation to Self-Knowledge
  Distillation: A Unified Approach with Normalized Loss and Customized Soft
  Labels" (ICCV 2023, arXiv:2303.13005); conventions of the authors' code
  (`NKDLoss` in yzd-v/cls_KD).

Both need the labels: they split the classes into the target (ground-truth)
class and the non-target classes. Labels may be sparse integers `(batch,)`
or `(batch, 1)`, or one-hot / soft `(batch, classes)` rows (their argmax is
the target, as in the NKD code). Everything is computed in float32 with
`log_softmax` / `logsumexp`, so it is exact under `mixed_float16` and
compiles under XLA (the non-target columns are gathered with static shapes).
"""

import math

import keras
from keras import ops

from keras_kd.losses.base import (
    DistillationLoss,
    check_temperature,
    check_weight,
)
from keras_kd.scalars import is_real
from keras_kd.taps import LOGITS


# ----------------------------------------------------------------------
# Helpers.
def _float32(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def _num_classes(logits, what):
    classes = logits.shape[-1]
    if len(logits.shape) != 2 or classes is None:
        raise ValueError(
            f"{what} must be logits of shape (batch, classes) with a static "
            f"number of classes, got shape {tuple(logits.shape)}."
        )
    if classes < 2:
        raise ValueError(
            f"{what} has {classes} class; target/non-target distillation "
            "needs at least 2 classes."
        )
    return classes


def sparse_labels(labels, num_classes):
    """Integer class indices `(batch,)` from sparse or one-hot labels.

    Accepts `(batch,)` or `(batch, 1)` integers (or integer-valued floats),
    and `(batch, num_classes)` one-hot or soft label rows, whose argmax is
    taken (as the NKD authors' code does).
    """
    if labels is None:
        raise ValueError(
            "This loss needs the ground-truth labels; got labels=None. Feed "
            "(x, y) batches."
        )
    labels = ops.convert_to_tensor(labels)
    rank = len(labels.shape)
    if rank == 2 and labels.shape[-1] == num_classes and num_classes > 1:
        return ops.cast(ops.argmax(labels, axis=-1), "int32")
    if rank == 2 and labels.shape[-1] == 1:
        labels = ops.reshape(labels, (-1,))
        rank = 1
    if rank != 1:
        raise ValueError(
            "Labels must be sparse class indices of shape (batch,) or "
            f"(batch, 1), or one-hot rows of shape (batch, {num_classes}); "
            f"got shape {tuple(labels.shape)}."
        )
    return ops.cast(labels, "int32")


def non_target(values, labels):
    """Drops each row's ground-truth column: `(batch, C)` -> `(batch, C-1)`.

    Row b keeps columns `[0, …, y_b − 1, y_b + 1, …, C − 1]` in order. The
    gather indices are `arange(C−1) + (arange(C−1) >= y_b)`, so the shapes are
    static (XLA-friendly).
    """
    classes = values.shape[-1]
    base = ops.expand_dims(ops.arange(classes - 1, dtype="int32"), 0)
    shift = ops.cast(
        ops.greater_equal(base, ops.expand_dims(labels, -1)), "int32"
    )
    return ops.take_along_axis(values, base + shift, axis=-1)


def _target(values, labels):
    """`values[b, y_b]`, shape `(batch,)`."""
    picked = ops.take_along_axis(values, ops.expand_dims(labels, -1), axis=-1)
    return ops.squeeze(picked, axis=-1)


def _binary_log_probs(scaled_logits, labels):
    """log [p_gt, 1 − p_gt] of softmax(scaled_logits), stably, `(batch, 2)`.

    log p_gt = z_y − logsumexp(z) and log(1 − p_gt) = logsumexp(z_¬y) −
    logsumexp(z): no log of a probability that may underflow to 0.
    """
    total = ops.logsumexp(scaled_logits, axis=-1)
    log_gt = _target(scaled_logits, labels) - total
    log_other = ops.logsumexp(non_target(scaled_logits, labels), axis=-1) - total
    return ops.stack([log_gt, log_other], axis=-1)


def _kl_rows(log_p, log_q):
    """Σ_k p_k (log p_k − log q_k) per row, p = exp(log_p)."""
    return ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


# ----------------------------------------------------------------------
# DKD.
def dkd_per_sample(
    teacher_logits, student_logits, labels, alpha=1.0, beta=8.0, temperature=4.0
):
    """alpha·TCKD + beta·NCKD for each sample, shape `(batch,)`; see `dkd_loss`."""
    temperature = check_temperature(temperature)
    alpha = check_weight(alpha, "DKD's alpha")
    beta = check_weight(beta, "DKD's beta")
    t = _float32(teacher_logits) / temperature
    s = _float32(student_logits) / temperature
    classes = _num_classes(s, "The student logits")
    if t.shape[-1] != classes:
        raise ValueError(
            f"Teacher logits {tuple(t.shape)} and student logits "
            f"{tuple(s.shape)} must have the same number of classes."
        )
    y = sparse_labels(labels, classes)
    t = ops.stop_gradient(t)
    tckd = _kl_rows(_binary_log_probs(t, y), _binary_log_probs(s, y))
    nckd = _kl_rows(
        ops.log_softmax(non_target(t, y), axis=-1),
        ops.log_softmax(non_target(s, y), axis=-1),
    )
    return (alpha * tckd + beta * nckd) * (temperature**2)


def dkd_loss(
    teacher_logits, student_logits, labels, alpha=1.0, beta=8.0, temperature=4.0
):
    """Decoupled Knowledge Distillation (Zhao et al., CVPR 2022).

    With p = softmax(t / T), q = softmax(s / T) and y the ground-truth class:

        b^p = [p_y, 1 − p_y],  b^q = [q_y, 1 − q_y]        (binary probs)
        p̂ = softmax(t_¬y / T), q̂ = softmax(s_¬y / T)        (non-target
                                           classes only, C − 1 of them)
        TCKD = T² · mean_b KL(b^p ‖ b^q)
        NCKD = T² · mean_b KL(p̂ ‖ q̂)
        dkd  = alpha · TCKD + beta · NCKD

    As in mdistiller (`dkd_loss` in `mdistiller/distillers/DKD.py`): TCKD is
    `F.kl_div(log b^q, b^p, sum) · T² / batch`; NCKD uses
    `softmax(t/T − 1000·onehot)`, which is exactly the softmax over the C − 1
    non-target logits computed here by gathering those columns. Plain KD
    equals TCKD + (1 − p_y)·NCKD; DKD decouples the two weights. The paper's
    defaults: alpha = 1, beta = 8 (CIFAR-100), T = 4, and a linear warm-up of
    the loss weight over the first 20 epochs (see the `DKD` class).

    Args:
        teacher_logits: `(batch, classes)` teacher logits.
        student_logits: `(batch, classes)` student logits.
        labels: `(batch,)` int class indices, or `(batch, classes)` one-hot.
        alpha: weight of TCKD (>= 0).
        beta: weight of NCKD (>= 0).
        temperature: T > 0.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> y = np.array([0, 1])
    >>> round(float(dkd_loss(t, s, y, alpha=1.0, beta=8.0, temperature=4.0)), 4)
    4.1052
    """
    return ops.mean(
        dkd_per_sample(teacher_logits, student_logits, labels, alpha, beta, temperature)
    )


def _check_epochs(value, what):
    if not is_real(value):
        raise TypeError(f"{what} must be a number of epochs, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value}.")
    return int(value) if value == int(value) else value


@keras.saving.register_keras_serializable(package="keras_kd")
class DKD(DistillationLoss):
    """Decoupled Knowledge Distillation (Zhao et al. 2022), see `dkd_loss`.

    The term returns alpha·TCKD + beta·NCKD per sample. The paper (and
    mdistiller) multiply it by a warm-up factor min(epoch / warmup_epochs, 1),
    epochs counted from 1: the first epoch trains with weight/warmup_epochs,
    epoch `warmup_epochs` and later with the full `weight`. Here the warm-up
    is the term's `default_schedule`, a
    `keras_kd.schedules.LinearWarmup(weight, warmup_epochs)` that the
    `keras_kd.schedules.LossWeightScheduler` callback applies to the term's
    weight variable at the start of every epoch (no retracing).
    `Distiller.fit` adds that callback by itself when a term has a default
    schedule and no scheduler was passed; `warmup_epochs=0` switches the
    warm-up off.

    Args:
        alpha: weight of TCKD (default 1).
        beta: weight of NCKD (default 8, the CIFAR-100 setting; the paper
            uses 0.5 on ImageNet and larger values for stronger teachers).
        temperature: T > 0 (default 4).
        warmup_epochs: epochs of linear warm-up of the weight (default 20).
        weight: the weight after warm-up (default 1). `get_config` stores
            this target, `term.weight` reads the current (warmed-up) value,
            and `term.target_weight = w` changes the target.

    Example:

    ```python
    dkd = keras_kd.losses.DKD(alpha=1.0, beta=8.0, temperature=4.0)
    distiller = keras_kd.Distiller(teacher, student, losses=[dkd])
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    distiller.fit(train_ds, epochs=240)  # the warm-up applies by itself
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)
    requires_labels = True

    def __init__(
        self,
        alpha=1.0,
        beta=8.0,
        temperature=4.0,
        warmup_epochs=20,
        weight=1.0,
        name="dkd",
        **kwargs,
    ):
        super().__init__(weight=weight, name=name, **kwargs)
        self.alpha = check_weight(alpha, "DKD's alpha")
        self.beta = check_weight(beta, "DKD's beta")
        self.temperature = check_temperature(temperature)
        self.warmup_epochs = _check_epochs(warmup_epochs, "DKD's warmup_epochs")
        self._target_weight = check_weight(weight, "The weight of DKD")

    @property
    def target_weight(self):
        """The weight reached at the end of the warm-up."""
        return self._target_weight

    @target_weight.setter
    def target_weight(self, value):
        self._target_weight = check_weight(
            value, f"The target weight of term '{self.name}'"
        )

    @property
    def default_schedule(self):
        """`LinearWarmup(target_weight, warmup_epochs)`, or None without warm-up."""
        if not self.warmup_epochs:
            return None
        from keras_kd.schedules import LinearWarmup

        return LinearWarmup(self._target_weight, self.warmup_epochs)

    def call(self, teacher, student, labels=None, training=None):
        return dkd_per_sample(
            teacher[LOGITS],
            student[LOGITS],
            labels,
            self.alpha,
            self.beta,
            self.temperature,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "weight": self._target_weight,
            "alpha": self.alpha,
            "beta": self.beta,
            "temperature": self.temperature,
            "warmup_epochs": self.warmup_epochs,
        }


# ----------------------------------------------------------------------
# NKD.
def nkd_per_sample(
    teacher_logits, student_logits, labels, temperature=1.0, gamma=1.5
):
    """The NKD loss of each sample, shape `(batch,)`; see `nkd_loss`."""
    temperature = check_temperature(temperature)
    gamma = check_weight(gamma, "NKD's gamma")
    t = ops.stop_gradient(_float32(teacher_logits))
    s = _float32(student_logits)
    classes = _num_classes(s, "The student logits")
    if t.shape[-1] != classes:
        raise ValueError(
            f"Teacher logits {tuple(t.shape)} and student logits "
            f"{tuple(s.shape)} must have the same number of classes."
        )
    y = sparse_labels(labels, classes)
    # Target part, at T = 1 and without T².
    t_target = _target(ops.softmax(t, axis=-1), y)
    s_target = _target(ops.log_softmax(s, axis=-1), y)
    loss_target = -t_target * s_target
    # Non-target part, over the C − 1 non-target logits, at T, times γ·T².
    t_soft = ops.softmax(non_target(t, y) / temperature, axis=-1)
    s_log = ops.log_softmax(non_target(s, y) / temperature, axis=-1)
    loss_non = -gamma * (temperature**2) * ops.sum(t_soft * s_log, axis=-1)
    return loss_target + loss_non


def nkd_loss(teacher_logits, student_logits, labels, temperature=1.0, gamma=1.5):
    """Normalized Knowledge Distillation (Yang et al., ICCV 2023).

    With y the ground-truth class, t_¬y / s_¬y the C − 1 non-target logits:

        target     = −mean_b softmax(t)_y · log_softmax(s)_y          (T = 1)
        non-target = −γ · T² · mean_b Σ_k softmax(t_¬y / T)_k
                                         · log_softmax(s_¬y / T)_k
        nkd        = target + non-target

    The non-target distributions are re-normalised over the non-target
    classes ("normalized loss"), as in the authors' `NKDLoss` (yzd-v/cls_KD):
    the target part uses no temperature and no T², the non-target part is a
    cross-entropy (not a KL: it differs from KL by the teacher's entropy, a
    constant for the student). Defaults T = 1, γ = 1.5 are the authors'.

    Args:
        teacher_logits: `(batch, classes)` teacher logits.
        student_logits: `(batch, classes)` student logits.
        labels: `(batch,)` int class indices, or `(batch, classes)` one-hot
            (argmax taken, as in the authors' code).
        temperature: T > 0 of the non-target part.
        gamma: γ >= 0, weight of the non-target part.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> y = np.array([0, 1])
    >>> round(float(nkd_loss(t, s, y, temperature=1.0, gamma=1.5)), 4)
    2.5861
    """
    return ops.mean(
        nkd_per_sample(teacher_logits, student_logits, labels, temperature, gamma)
    )


@keras.saving.register_keras_serializable(package="keras_kd")
class NKD(DistillationLoss):
    """Normalized Knowledge Distillation (Yang et al. 2023), see `nkd_loss`.

    Args:
        temperature: T > 0 of the non-target part (default 1).
        gamma: weight γ of the non-target part (default 1.5).
        weight: the term's weight (default 1).

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

    def __init__(self, temperature=1.0, gamma=1.5, weight=1.0, name="nkd", **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        self.temperature = check_temperature(temperature)
        self.gamma = check_weight(gamma, "NKD's gamma")

    def call(self, teacher, student, labels=None, training=None):
        return nkd_per_sample(
            teacher[LOGITS], student[LOGITS], labels, self.temperature, self.gamma
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "gamma": self.gamma,
        }
