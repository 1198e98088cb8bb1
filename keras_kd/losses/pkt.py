"""PKT: Passalis & Tefas 2018, "Learning Deep Representations with
Probabilistic Knowledge Transfer" (ECCV 2018), following RepDistiller's `PKT`.

Like every relational term (`keras_kd.losses.pkt`, `keras_kd.losses.sp`),
it follows RepDistiller's implementation, flattens features of any rank
per sample, and is batch-level: it compares the samples of a batch with
each other, so the term returns a scalar and the batch's `sample_weight`
does not apply to it. A batch of one sample has nothing to compare: the
loss is then exactly 0, with zero (finite) gradients, so a final partial
batch of one sample does not turn an epoch's loss to NaN.
"""

import keras
from keras import ops

from keras_kd.checks.numbers import check_weight
from keras_kd.losses._ops import flatten_per_sample, l2_normalize
from keras_kd.losses._pair import FlattenedPairTerm, zero_below_two_samples
from keras_kd.losses.registry import register_term


def _pkt_normalize(x, eps):
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=1, keepdims=True), 1e-30))
    x = x / (norm + eps)
    return ops.where(ops.isnan(x), ops.zeros_like(x), x)


def _pkt_probabilities(x, eps):
    x = _pkt_normalize(x, eps)
    similarity = (ops.matmul(x, ops.transpose(x)) + 1.0) / 2.0
    return similarity / ops.sum(similarity, axis=1, keepdims=True)


def pkt_loss(teacher, student, eps=1e-7):
    """Probabilistic knowledge transfer (Passalis & Tefas 2018), RepDistiller's
    `PKT.cosine_similarity_loss`.

    With features flattened per sample and x̂ = x / (‖x‖₂ + eps):

        K_ij = (⟨x̂_i, x̂_j⟩ + 1) / 2,   P_ij = K_ij / Σ_j K_ij
        L = mean_{i,j} P^t_ij · log((P^t_ij + eps) / (P^s_ij + eps))

    Returns one float32 scalar per batch, not per-sample values: batch-level,
    so `sample_weight` does not weight it (see the module docstring).

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(pkt_loss(x, 2.0 * x)), 6)
    0.0
    """
    t = _pkt_probabilities(ops.stop_gradient(flatten_per_sample(teacher)), eps)
    s = _pkt_probabilities(flatten_per_sample(student), eps)
    return zero_below_two_samples(ops.mean(t * ops.log((t + eps) / (s + eps))), s)


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class PKT(FlattenedPairTerm):
    """Probabilistic knowledge transfer (Passalis & Tefas 2018), see
    `pkt_loss`.

    Args:
        teacher_layer, student_layer: the taps (any rank; flattened).
        eps: the epsilon of the normalisation and the log (default 1e-7).
        weight: the term's weight. Default 30000, RepDistiller's β for PKT.

    Example:

    ```python
    term = keras_kd.losses.PKT("t_embedding", "s_embedding")
    ```
    """

    def __init__(
        self,
        teacher_layer,
        student_layer,
        eps=1e-7,
        weight=30000.0,
        name="pkt",
        **kwargs,
    ):
        super().__init__(teacher_layer, student_layer, weight, name, **kwargs)
        eps = float(eps)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}.")
        self.eps = eps

    def call(self, teacher, student, labels=None, training=None):
        return pkt_loss(
            teacher[self.teacher_layer], student[self.student_layer], self.eps
        )

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}
