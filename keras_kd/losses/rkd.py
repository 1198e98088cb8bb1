"""RKD: Park et al. 2019, "Relational Knowledge Distillation" (CVPR 2019),
following RepDistiller's `RKDLoss`. Where RepDistiller's RKD gives NaN on a
batch of one sample (0/0 in the mean distance), this gives 0.

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


def _pairwise_distances(e, eps=1e-12):
    """RepDistiller's `RKDLoss.pdist`: ‖e_i − e_j‖ clamped at eps (before the
    sqrt), zero on the diagonal."""
    e_square = ops.sum(ops.square(e), axis=1)
    prod = ops.matmul(e, ops.transpose(e))
    res = ops.expand_dims(e_square, 1) + ops.expand_dims(e_square, 0) - 2.0 * prod
    res = ops.sqrt(ops.maximum(res, eps))
    n = ops.shape(e)[0]
    return res * (1.0 - ops.eye(n, dtype="float32"))


def _normalized_by_positive_mean(d):
    positive = ops.cast(d > 0, "float32")
    count = ops.sum(positive)
    # No positive distance (one sample): d is all 0; divide by 1, not 0/0.
    mean = ops.where(
        count > 0, ops.sum(d * positive) / ops.maximum(count, 1.0), 1.0
    )
    return d / mean


def _smooth_l1(x, y):
    """torch's `F.smooth_l1_loss(x, y)` (beta 1, mean)."""
    diff = ops.abs(x - y)
    return ops.mean(ops.where(diff < 1.0, 0.5 * ops.square(diff), diff - 0.5))


def _angles(e):
    """<n(e_j − e_i), n(e_k − e_i)> for all i, j, k: shape (n, n, n)."""
    diff = ops.expand_dims(e, 0) - ops.expand_dims(e, 1)  # [i, j] = e_j − e_i
    diff = l2_normalize(diff, axis=2)
    return ops.einsum("ijd,ikd->ijk", diff, diff)


def rkd_loss(teacher, student, distance_weight=25.0, angle_weight=50.0):
    """Relational KD (Park et al. 2019), RepDistiller's `RKDLoss`.

    With features flattened per sample to t_i, s_i (n samples):

        ψ_D(i, j) = ‖x_i − x_j‖ / μ,  μ = mean of the positive distances
        ψ_A(i, j, k) = ⟨(x_j − x_i)/‖x_j − x_i‖, (x_k − x_i)/‖x_k − x_i‖⟩
        L = w_d · Huber(ψ_D(s), ψ_D(t)) + w_a · Huber(ψ_A(s), ψ_A(t))

    where distances are sqrt(max(‖x_i‖² + ‖x_j‖² − 2⟨x_i, x_j⟩, 1e-12)) with a
    zero diagonal, ‖·‖ in ψ_A is clamped at 1e-12 (torch F.normalize) and
    Huber is smooth-L1 with δ = 1 averaged over all entries. The teacher's
    relations carry no gradient. The angle term builds an (n, n, features)
    tensor: keep the tapped features small (e.g. the pooled embedding).

    Returns one float32 scalar per batch, not per-sample values: batch-level,
    so `sample_weight` does not weight it (see the module docstring).

    Example:

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    >>> round(float(rkd_loss(x, 3.0 * x)), 6)
    0.0
    """
    distance_weight = check_weight(distance_weight, "distance_weight")
    angle_weight = check_weight(angle_weight, "angle_weight")
    t = ops.stop_gradient(flatten_per_sample(teacher))
    s = flatten_per_sample(student)
    loss = ops.zeros((), "float32")
    if distance_weight:
        t_d = _normalized_by_positive_mean(_pairwise_distances(t))
        s_d = _normalized_by_positive_mean(_pairwise_distances(s))
        loss = loss + distance_weight * _smooth_l1(s_d, t_d)
    if angle_weight:
        loss = loss + angle_weight * _smooth_l1(_angles(s), _angles(t))
    return zero_below_two_samples(loss, s)


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class RKD(FlattenedPairTerm):
    """Relational knowledge distillation (Park et al. 2019), see `rkd_loss`.

    Teacher and student features may have different sizes (only relations
    between samples are compared).

    Args:
        teacher_layer, student_layer: the taps (any rank; flattened).
        distance_weight: w_d (default 25), angle_weight: w_a (default 50),
            RepDistiller's defaults.
        weight: the term's weight (default 1, RepDistiller's β for RKD).

    Example:

    ```python
    term = keras_kd.losses.RKD("t_embedding", "s_embedding")
    ```
    """

    def __init__(
        self,
        teacher_layer,
        student_layer,
        distance_weight=25.0,
        angle_weight=50.0,
        weight=1.0,
        name="rkd",
        **kwargs,
    ):
        super().__init__(teacher_layer, student_layer, weight, name, **kwargs)
        self.distance_weight = check_weight(distance_weight, "distance_weight")
        self.angle_weight = check_weight(angle_weight, "angle_weight")

    def call(self, teacher, student, labels=None, training=None):
        return rkd_loss(
            teacher[self.teacher_layer],
            student[self.student_layer],
            self.distance_weight,
            self.angle_weight,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "distance_weight": self.distance_weight,
            "angle_weight": self.angle_weight,
        }
