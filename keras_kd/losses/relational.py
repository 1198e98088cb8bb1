"""Relational distillation: terms that match relations between the samples of
a batch rather than the features themselves.

- RKD: Park et al. 2019, "Relational Knowledge Distillation" (CVPR 2019).
- PKT: Passalis & Tefas 2018, "Learning Deep Representations with
  Probabilistic Knowledge Transfer" (ECCV 2018).
- SP: Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation"
  (ICCV 2019).

Each follows RepDistiller's implementation (`RKDLoss`, `PKT`, `Similarity`).
Features of any rank are flattened per sample. The losses are batch-level
(they compare samples with each other), so the terms return a scalar and
the batch's `sample_weight` does not apply to them. A batch of one sample
has nothing to compare: each loss is then exactly 0, with zero (finite)
gradients, where RepDistiller's RKD gives NaN (0/0 in the mean distance);
a final partial batch of one sample no longer turns an epoch's loss to NaN.
"""

import keras
from keras import ops

from keras_kd.losses._ops import flatten_per_sample, l2_normalize
from keras_kd.checks.tensors import describe_shape
from keras_kd.checks.numbers import check_weight
from keras_kd.losses.pair import SinglePairTerm


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


def _zero_below_two_samples(loss, x):
    """`loss`, or exactly 0 when the batch `x` has fewer than 2 samples.

    `loss` must be finite there (the unselected branch of `where` still
    feeds its gradient with zeros, and 0 · NaN is NaN).
    """
    return ops.where(ops.shape(x)[0] >= 2, loss, ops.zeros_like(loss))


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
    return _zero_below_two_samples(loss, s)


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
    return _zero_below_two_samples(ops.mean(t * ops.log((t + eps) / (s + eps))), s)


def _similarity(x):
    return l2_normalize(ops.matmul(x, ops.transpose(x)), axis=1)


def sp_loss(teacher, student):
    """Similarity-preserving KD (Tung & Mori 2019), RepDistiller's
    `Similarity`.

    With features flattened per sample to F (n, features):

        G = row-L2-normalise(F · Fᵀ)   (torch F.normalize, eps 1e-12)
        L = Σ_{i,j} (G_t − G_s)²_ij / n²

    Returns one float32 scalar per batch, not per-sample values: batch-level,
    so `sample_weight` does not weight it (see the module docstring).

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(sp_loss(x, 5.0 * x)), 6)
    0.0
    """
    t = flatten_per_sample(teacher)
    s = flatten_per_sample(student)
    n = ops.cast(ops.shape(s)[0], "float32")
    diff = _similarity(t) - _similarity(s)
    return _zero_below_two_samples(ops.sum(ops.square(diff)) / (n * n), s)


class _FlattenedPairTerm(SinglePairTerm):
    """A term comparing one teacher tap with one student tap, both flattened
    per sample."""

    def build(self, teacher_shapes=None, student_shapes=None):
        for tap, shape, role in (
            (self.teacher_layer, teacher_shapes[self.teacher_layer], "teacher"),
            (self.student_layer, student_shapes[self.student_layer], "student"),
        ):
            if shape is not None and len(shape) < 2:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': the {role} tap "
                    f"'{tap}' has shape {describe_shape(shape)}; it needs "
                    "one feature vector or map per sample (rank >= 2)."
                )


@keras.saving.register_keras_serializable(package="keras_kd")
class RKD(_FlattenedPairTerm):
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


@keras.saving.register_keras_serializable(package="keras_kd")
class PKT(_FlattenedPairTerm):
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


@keras.saving.register_keras_serializable(package="keras_kd")
class SP(_FlattenedPairTerm):
    """Similarity-preserving distillation (Tung & Mori 2019), see `sp_loss`.

    Args:
        teacher_layer, student_layer: the taps (any rank; flattened).
        weight: the term's weight. Default 3000, RepDistiller's β for SP.

    Example:

    ```python
    term = keras_kd.losses.SP("t_block3", "s_block3")
    ```
    """

    def __init__(self, teacher_layer, student_layer, weight=3000.0, name="sp", **kwargs):
        super().__init__(teacher_layer, student_layer, weight, name, **kwargs)

    def call(self, teacher, student, labels=None, training=None):
        return sp_loss(teacher[self.teacher_layer], student[self.student_layer])
