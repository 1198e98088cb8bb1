"""Attention transfer: Zagoruyko & Komodakis 2017, "Paying More Attention to
Attention: Improving the Performance of Convolutional Neural Networks via
Attention Transfer" (ICLR 2017, arXiv:1612.03928)."""

import keras
from keras import ops

from keras_kd.losses._ops import l2_normalize, pool_to_common_size, to_float32
from keras_kd.checks.tensors import check_feature_map, describe_shape
from keras_kd.losses._pair import MultiPairTerm, sum_over_pairs
from keras_kd.checks.numbers import as_python, is_real
from keras_kd.losses.registry import register_term


def _check_p(p):
    if not is_real(p) or p <= 0:
        raise ValueError(f"p must be a number > 0, got {p!r} (the paper uses 2).")
    return as_python(p)


def attention_map(features, p=2):
    """Spatial attention map of an NHWC feature map, shape (batch, h·w).

    Formula (Zagoruyko & Komodakis 2017, eq. 2 with the mean over channels):

        Q[b, hw] = mean_c |F[b, h, w, c]|^p ,   A = Q / max(‖Q‖₂, 1e-12)

    i.e. flattened per sample and L2-normalised like torch's `F.normalize`
    (the official code and RepDistiller's `Attention.at`, which use
    `f.pow(p)`: the same for even p).

    Example:

    >>> import numpy as np
    >>> f = np.array([[[[3.0], [0.0]], [[0.0], [4.0]]]])  # (1, 2, 2, 1)
    >>> [round(float(v), 4) for v in np.asarray(attention_map(f, p=1))[0]]
    [0.6, 0.0, 0.0, 0.8]
    """
    p = _check_p(p)
    f = to_float32(features)
    if len(f.shape) != 4:
        raise ValueError(
            f"attention_map needs an NHWC feature map, got shape "
            f"{describe_shape(f.shape)}."
        )
    if p == 2:
        powered = ops.square(f)
    elif p == 1:
        powered = ops.abs(f)
    else:
        powered = ops.power(ops.abs(f), float(p))
    q = ops.mean(powered, axis=-1)
    h, w = q.shape[1], q.shape[2]
    if h is None or w is None:
        q = ops.reshape(q, (ops.shape(q)[0], -1))
    else:
        q = ops.reshape(q, (-1, h * w))
    return l2_normalize(q, axis=-1)


def attention_transfer_loss(teacher_features, student_features, p=2):
    """Attention-transfer loss (Zagoruyko & Komodakis 2017, eq. 2) between
    two NHWC maps, one float32 value per sample, shape `(batch,)`.

    Formula, with A = `attention_map(·, p)`, for sample b:

        L_AT[b] = mean_{hw} (A_s[b, hw] − A_t[b, hw])²

    Its batch mean is RepDistiller's `at_loss` (the `AttentionTransfer`
    class averages with the batch's `sample_weight`).

    When the spatial sizes differ, the larger feature map is average-pooled
    (adaptive, as torch) to the smaller size before the maps are computed,
    as in RepDistiller's `Attention.at_loss`. Channel counts may differ.

    Example:

    >>> import numpy as np
    >>> t = np.ones((1, 2, 2, 3))
    >>> s = np.ones((1, 4, 4, 5))
    >>> [float(v) for v in np.asarray(attention_transfer_loss(t, s))]
    [0.0]
    """
    t, s = pool_to_common_size(
        to_float32(teacher_features), to_float32(student_features)
    )
    diff = attention_map(s, p) - attention_map(t, p)
    return ops.mean(ops.square(diff), axis=-1)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class AttentionTransfer(MultiPairTerm):
    """Attention transfer over pairs of layers, see `attention_transfer_loss`.

        loss = Σ_k mean_{b, hw} (A_s^k − A_t^k)²

    summed over the (teacher_layers[k], student_layers[k]) pairs.

    Args:
        teacher_layers: a teacher layer name or a list of them (NHWC maps).
        student_layers: the student layers, as many as teacher layers.
        p: the exponent of |F| (default 2).
        weight: the term's weight. Default 1000, β of RepDistiller's AT
            (the paper's β/2 · ‖·‖₂ with β = 1000 over the normalised maps).

    Example:

    ```python
    term = keras_kd.losses.AttentionTransfer(
        ["t_block1", "t_block2"], ["s_block1", "s_block2"])
    ```
    """

    def __init__(
        self,
        teacher_layers,
        student_layers,
        p=2,
        weight=1000.0,
        name="attention",
        **kwargs,
    ):
        super().__init__(teacher_layers, student_layers, weight, name, **kwargs)
        self.p = _check_p(p)

    def build(self, teacher_shapes=None, student_shapes=None):
        for t, s in zip(self.teacher_layers, self.student_layers):
            check_feature_map(self, "teacher", t, teacher_shapes[t])
            check_feature_map(self, "student", s, student_shapes[s])

    def call(self, teacher, student, labels=None, training=None):
        return sum_over_pairs(
            attention_transfer_loss(teacher[t], student[s], self.p)
            for t, s in zip(self.teacher_layers, self.student_layers)
        )

    def get_config(self):
        return {**super().get_config(), "p": self.p}
