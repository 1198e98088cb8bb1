"""DKD: Zhao et al. 2022, "Decoupled Knowledge Distillation" (CVPR 2022,
arXiv:2203.08679); conventions of the authors' code, mdistiller
(`mdistiller/distillers/DKD.py`)."""

import keras
from keras import ops

from keras_kd.losses._targets import non_target, target, target_rows
from keras_kd.checks.numbers import (
    check_epochs,
    check_flag,
    check_ignore_index,
    check_temperature,
    check_weight,
)
from keras_kd.losses.base import LogitLossWrapper
from keras_kd.losses.registry import register_term
from keras_kd.losses._dense import dense_mask, mean_over_positions
from keras_kd.losses.kd import _kd_positions
from keras_kd.losses.logit_standardization import standardize_logits
from keras_kd.taps.views import LOGITS


def _binary_logits(logits, rest, labels, temperature):
    """`(rows, 2)` logits whose softmax at T is [p_y, 1 − p_y]."""
    rest_logit = temperature * ops.logsumexp(rest / temperature, axis=-1)
    return ops.stack([target(logits, labels), rest_logit], axis=-1)


def dkd_loss(
    teacher_logits,
    student_logits,
    labels,
    alpha=1.0,
    beta=8.0,
    temperature=4.0,
    mask=None,
    logit_standardization=False,
):
    """Decoupled Knowledge Distillation (Zhao et al., CVPR 2022).

    With p = softmax(t / T), q = softmax(s / T) and y the ground-truth class,
    for each sample:

        b^p = [p_y, 1 − p_y],  b^q = [q_y, 1 − q_y]        (binary probs)
        p̂ = softmax(t_¬y / T), q̂ = softmax(s_¬y / T)        (non-target
                                           classes only, C − 1 of them)
        TCKD = T² · KL(b^p ‖ b^q)
        NCKD = T² · KL(p̂ ‖ q̂)
        dkd  = alpha · TCKD + beta · NCKD

    One value per sample, as Keras's loss functions return; the `DKD` class
    averages them with the batch's `sample_weight`. As in mdistiller
    (`dkd_loss` in `mdistiller/distillers/DKD.py`), whose batch mean this
    is: TCKD is `F.kl_div(log b^q, b^p, sum) · T² / batch`; NCKD uses
    `softmax(t/T − 1000·onehot)`, which is exactly the softmax over the C − 1
    non-target logits computed here by gathering those columns. Plain KD
    equals TCKD + (1 − p_y)·NCKD; DKD decouples the two weights. The paper's
    defaults: alpha = 1, beta = 8 (CIFAR-100), T = 4, and a linear warm-up of
    the loss weight over the first 20 epochs (see the `DKD` class).

    Dense prediction: logits `(batch, H, W, classes)` with labels
    `(batch, H, W)` are distilled pixel by pixel (each pixel's own target
    class); each sample's value is Σ_{mask = 1} dkd_pixel / max(#valid, 1).

    Args:
        teacher_logits: `(batch, classes)` or `(batch, H, W, classes)`.
        student_logits: student logits of the same shape.
        labels: int class indices `(batch,)` / `(batch, H, W)` (a trailing
            axis of 1 is allowed), or one-hot rows `(..., classes)`.
        alpha: weight of TCKD (>= 0).
        beta: weight of NCKD (>= 0).
        temperature: T > 0.
        mask: optional `(batch, H, W)` weights, 1 where a pixel counts and 0
            where it is ignored (its label may then be anything).
        logit_standardization: if True, both logits are first replaced by
            `standardize_logits` (Sun et al., CVPR 2024), then divided by T,
            as in the authors' `dkd_loss`. They run DKD+LS with T = 2 and
            alpha, beta multiplied by 9 (`--logit-stand --base-temp 2
            --kd-weight 9`).

    Returns:
        float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    >>> s = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
    >>> y = np.array([0, 1])
    >>> values = dkd_loss(t, s, y, alpha=1.0, beta=8.0, temperature=4.0)
    >>> [round(float(v), 4) for v in np.asarray(values)]
    [1.3264, 6.884]
    """
    temperature = check_temperature(temperature)
    alpha = check_weight(alpha, "DKD's alpha")
    beta = check_weight(beta, "DKD's beta")
    t, s, y, mask, batch = target_rows(
        teacher_logits, student_logits, labels, mask, "dkd_loss"
    )
    if logit_standardization:
        t, s = standardize_logits(t), standardize_logits(s)
    t = ops.stop_gradient(t)
    t_rest, s_rest = non_target(t, y), non_target(s, y)
    # Both parts are T²·KL of two softmaxes at T, so both take KD's
    # cancellation-free form: the direct Σ p (log p − log q) lost 1e-3
    # (relative) of a sample's TCKD at T = 8 in float32. b^p is the softmax
    # at T of the two logits [t_y, T·logsumexp(t_¬y / T)].
    tckd = _kd_positions(
        _binary_logits(t, t_rest, y, temperature),
        _binary_logits(s, s_rest, y, temperature),
        temperature,
    )
    nckd = _kd_positions(t_rest, s_rest, temperature)
    values = alpha * tckd + beta * nckd
    return mean_over_positions(ops.reshape(values, (batch, -1)), mask)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class DKD(LogitLossWrapper):
    """Decoupled Knowledge Distillation (Zhao et al. 2022), see `dkd_loss`.

    The term returns alpha·TCKD + beta·NCKD per sample. The paper (and
    mdistiller) multiply it by a warm-up factor min(epoch / warmup_epochs, 1),
    epochs counted from 1: the first epoch trains with weight/warmup_epochs,
    epoch `warmup_epochs` and later with the full `weight`. Here the warm-up
    is the term's `default_schedule`, a
    `keras_kd.regimes.schedules.LinearWarmup(weight, warmup_epochs)` that the
    `keras_kd.regimes.schedules.LossWeightScheduler` callback applies to the term's
    weight variable at the start of every epoch (no retracing).
    `Distiller.fit` adds that callback by itself when a term has a default
    schedule and no scheduler was passed; `warmup_epochs=0` switches the
    warm-up off.

    Dense logits `(batch, H, W, classes)` with label maps `(batch, H, W)`
    are distilled pixel by pixel; pixels labelled `ignore_index` (or any
    negative label) are left out of each sample's mean.

    Args:
        alpha: weight of TCKD (default 1).
        beta: weight of NCKD (default 8, the CIFAR-100 setting; the paper
            uses 0.5 on ImageNet and larger values for stronger teachers).
        temperature: T > 0 (default 4).
        warmup_epochs: epochs of linear warm-up of the weight (default 20).
        weight: the weight after warm-up (default 1). `get_config` stores
            this target, `term.weight` reads the current (warmed-up) value,
            and `term.target_weight = w` changes the target.
        ignore_index: the label of ignored pixels in dense label maps
            (default -1).
        logit_standardization: z-score both logits per sample before the
            temperature (default False); see `dkd_loss`.

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
        ignore_index=-1,
        logit_standardization=False,
        name="dkd",
        **kwargs,
    ):
        super().__init__(
            dkd_loss,
            {"alpha": check_weight(alpha, "DKD's alpha"),
             "beta": check_weight(beta, "DKD's beta"),
             "temperature": check_temperature(temperature),
             "logit_standardization": check_flag(
                 logit_standardization, "logit_standardization")},
            weight=weight, ignore_index=ignore_index, name=name, **kwargs,
        )
        self.warmup_epochs = check_epochs(warmup_epochs, "DKD's warmup_epochs")
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
        from keras_kd.regimes.schedules import LinearWarmup

        return LinearWarmup(self._target_weight, self.warmup_epochs)

    def get_config(self):
        # The configured weight is the warm-up's target, not the weight now.
        return {**super().get_config(), "weight": self._target_weight,
                "warmup_epochs": self.warmup_epochs}
