"""SP: Tung & Mori 2019, "Similarity-Preserving Knowledge Distillation"
(ICCV 2019), following RepDistiller's `Similarity`.

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
    return zero_below_two_samples(ops.sum(ops.square(diff)) / (n * n), s)


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class SP(FlattenedPairTerm):
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
