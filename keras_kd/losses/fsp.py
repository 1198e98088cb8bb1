"""FSP: Yim et al. 2017, "A Gift from Knowledge Distillation: Fast
Optimization, Network Minimization and Transfer Learning" (CVPR 2017)."""

import keras
import numpy as np
from keras import ops

from keras_kd.losses._ops import pool_to_common_size, to_float32
from keras_kd.checks.tensors import check_feature_map, describe_shape
from keras_kd.losses.base import DistillationLoss
from keras_kd.losses.registry import register_term
from keras_kd.checks.numbers import check_weight, is_integer
from keras_kd.losses._pair import sum_over_pairs


def fsp_matrix(first, second):
    """The "flow of solution procedure" matrix of two NHWC feature maps.

    Formula, for maps F1 (batch, h, w, C1) and F2 (batch, h, w, C2):

        G[b, i, j] = Σ_{h,w} F1[b, h, w, i] · F2[b, h, w, j] / (h · w)

    When the spatial sizes differ, the larger map is first average-pooled to
    the smaller size (adaptive average pooling, as RepDistiller's `FSP`).
    RepDistiller stores the transpose (C2, C1); the loss is the same.

    Returns a float32 tensor of shape (batch, C1, C2).

    Example:

    >>> import numpy as np
    >>> f1 = np.ones((1, 2, 2, 1))
    >>> f2 = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> np.asarray(fsp_matrix(f1, f2)).tolist()
    [[[3.0, 4.0]]]
    """
    first, second = pool_to_common_size(to_float32(first), to_float32(second))
    h, w = first.shape[1], first.shape[2]
    if h is None or w is None:
        size = ops.cast(ops.shape(first)[1] * ops.shape(first)[2], "float32")
    else:
        size = float(h * w)
    return ops.einsum("bhwi,bhwj->bij", first, second) / size


def _pair_loss_per_sample(g_teacher, g_student):
    return ops.mean(ops.square(g_student - g_teacher), axis=(1, 2))


def _check_pair_weights(weights, n):
    if weights is None:
        return [1.0] * n
    weights = list(weights)
    if len(weights) != n:
        raise ValueError(
            f"Got {len(weights)} pair weights for {n} FSP pairs; give one "
            "weight per pair (or None for 1 each)."
        )
    return [check_weight(w, f"FSP pair weight {i}") for i, w in enumerate(weights)]


def fsp_loss(teacher_pairs, student_pairs, weights=None):
    """FSP loss: Yim et al. 2017, eq. 2.

    Formula, with G_t^k, G_s^k the FSP matrices (`fsp_matrix`) of pair k,
    for each sample b:

        L[b] = Σ_k λ_k · mean_{i, j} (G_s^k[b, i, j] − G_t^k[b, i, j])²

    Its batch mean is RepDistiller's `FSP.compute_loss`, summed over pairs
    with weights λ_k, 1 each by default; the `FSP` class averages the values
    with the batch's `sample_weight`.

    Args:
        teacher_pairs: list of (first, second) teacher NHWC maps.
        student_pairs: list of (first, second) student NHWC maps, with the
            teacher's channel counts pair by pair.
        weights: one weight per pair, or None.

    Returns float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> t = [(np.ones((1, 2, 2, 1)), np.ones((1, 2, 2, 1)))]
    >>> s = [(np.ones((1, 2, 2, 1)), np.zeros((1, 2, 2, 1)))]
    >>> [float(v) for v in np.asarray(fsp_loss(t, s))]
    [1.0]
    """
    teacher_pairs = list(teacher_pairs)
    student_pairs = list(student_pairs)
    if len(teacher_pairs) != len(student_pairs):
        raise ValueError(
            f"fsp_loss got {len(teacher_pairs)} teacher pairs and "
            f"{len(student_pairs)} student pairs; they must match one to one."
        )
    if not teacher_pairs:
        raise ValueError("fsp_loss needs at least one (first, second) pair of maps.")
    weights = _check_pair_weights(weights, len(teacher_pairs))
    values = []
    for (t1, t2), (s1, s2), w in zip(teacher_pairs, student_pairs, weights):
        g_t = fsp_matrix(t1, t2)
        g_s = fsp_matrix(s1, s2)
        if tuple(g_t.shape[1:]) != tuple(g_s.shape[1:]):
            raise ValueError(
                f"FSP matrices of shape {describe_shape(g_t.shape)} (teacher) "
                f"and {describe_shape(g_s.shape)} (student) differ: each "
                "pair needs the same channel counts in teacher and student."
            )
        values.append(w * _pair_loss_per_sample(g_t, g_s))
    return sum_over_pairs(values)


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class FSP(DistillationLoss):
    """FSP matrices of layer pairs (Yim et al. 2017), see `fsp_loss`.

    Each pair names two teacher layers and two student layers; the student's
    FSP matrix of its two layers is pulled towards the teacher's. Channel
    counts must agree per pair (teacher first ↔ student first, teacher
    second ↔ student second); spatial sizes may differ (the larger map of a
    pair is average-pooled to the smaller).

    Args:
        pairs: list of `(teacher_first, teacher_second, student_first,
            student_second)` tap names.
        pair_weights: one weight per pair (default 1 each).
        shuffle_seed: None (default) or an int. With a seed, the teacher's
            target matrices are permuted: a fixed permutation of the channels
            of each teacher layer, drawn once at build time from
            `numpy.random.RandomState(shuffle_seed)` (one per distinct teacher
            tap, in order of first appearance), is applied to the rows (first
            layer) and columns (second layer) of its FSP matrices,
            G'[i, j] = G[π₁(i), π₂(j)]. Different seeds give students
            decorrelated targets (the ensemble setting of the paper).
        weight: the term's weight (default 1; RepDistiller's scripts use 50).

    Use `term.matrices(teacher_view, student_view)` (or `fsp_matrices`) to
    get the teacher and student matrices, e.g. to draw them.

    Example:

    ```python
    term = keras_kd.losses.FSP(
        pairs=[("t_conv1", "t_conv2", "s_conv1", "s_conv2")])
    ```
    """

    def __init__(
        self,
        pairs,
        pair_weights=None,
        shuffle_seed=None,
        weight=1.0,
        name="fsp",
        **kwargs,
    ):
        super().__init__(weight=weight, name=name, **kwargs)
        if isinstance(pairs, tuple) and len(pairs) == 4 and all(
            isinstance(p, str) for p in pairs
        ):
            pairs = [pairs]
        if not isinstance(pairs, (list, tuple)) or not pairs:
            raise TypeError(
                "pairs must be a non-empty list of (teacher_first, "
                "teacher_second, student_first, student_second) layer names, "
                f"got {pairs!r}."
            )
        checked = []
        for pair in pairs:
            if (
                not isinstance(pair, (list, tuple))
                or len(pair) != 4
                or not all(isinstance(p, str) and p for p in pair)
            ):
                raise TypeError(
                    "Each FSP pair is (teacher_first, teacher_second, "
                    f"student_first, student_second) layer names; got {pair!r}."
                )
            checked.append(tuple(pair))
        self.pairs = checked
        self.pair_weights = _check_pair_weights(pair_weights, len(checked))
        self._given_pair_weights = None if pair_weights is None else list(
            self.pair_weights
        )
        if shuffle_seed is not None:
            if not is_integer(shuffle_seed):
                raise TypeError(f"shuffle_seed must be None or an int, got {shuffle_seed!r}.")
            shuffle_seed = int(shuffle_seed)
        self.shuffle_seed = shuffle_seed
        self.permutations = {}
        self.teacher_taps = tuple(
            dict.fromkeys(t for pair in checked for t in pair[:2])
        )
        self.student_taps = tuple(
            dict.fromkeys(s for pair in checked for s in pair[2:])
        )

    def build(self, teacher_shapes=None, student_shapes=None):
        for t1, t2, s1, s2 in self.pairs:
            for t in (t1, t2):
                check_feature_map(self, "teacher", t, teacher_shapes[t])
            for s in (s1, s2):
                check_feature_map(self, "student", s, student_shapes[s])
            for t, s in ((t1, s1), (t2, s2)):
                ct, cs = teacher_shapes[t][-1], student_shapes[s][-1]
                if ct != cs:
                    raise ValueError(
                        f"FSP '{self.name}': pair ({t1}, {t2}) ↔ ({s1}, {s2}): "
                        f"the teacher layer '{t}' has shape "
                        f"{describe_shape(teacher_shapes[t])} and the student "
                        f"layer '{s}' {describe_shape(student_shapes[s])}; "
                        "FSP compares matrices of size channels×channels, so "
                        "the channel counts must be equal. Tap student layers "
                        "with the teacher's channel counts."
                    )
        if self.shuffle_seed is not None:
            rng = np.random.RandomState(self.shuffle_seed)
            self.permutations = {
                tap: rng.permutation(int(teacher_shapes[tap][-1])).astype("int32")
                for tap in self.teacher_taps
            }

    def _teacher_matrix(self, teacher, t1, t2, shuffled=True):
        g = fsp_matrix(teacher[t1], teacher[t2])
        if shuffled and self.permutations:
            g = ops.take(g, self.permutations[t1], axis=1)
            g = ops.take(g, self.permutations[t2], axis=2)
        return g

    def matrices(self, teacher, student, shuffled=True):
        """The FSP matrices, a list of `(G_teacher, G_student)` per pair.

        Args:
            teacher, student: dicts tap name -> tensor (the views' outputs).
            shuffled: apply the teacher permutation (`shuffle_seed`), i.e.
                return the targets the student is trained towards.
        """
        return [
            (
                self._teacher_matrix(teacher, t1, t2, shuffled),
                fsp_matrix(student[s1], student[s2]),
            )
            for t1, t2, s1, s2 in self.pairs
        ]

    def call(self, teacher, student, labels=None, training=None):
        return sum_over_pairs(
            w * _pair_loss_per_sample(g_t, g_s)
            for (g_t, g_s), w in zip(self.matrices(teacher, student), self.pair_weights)
        )

    def get_config(self):
        return {
            **super().get_config(),
            "pairs": [list(pair) for pair in self.pairs],
            "pair_weights": self._given_pair_weights,
            "shuffle_seed": self.shuffle_seed,
        }


def fsp_matrices(term, teacher_view, student_view, shuffled=True):
    """The (teacher, student) FSP matrices of each pair of an `FSP` term.

    `teacher_view` / `student_view` are the dicts returned by the
    Distiller's `teacher_view(x)` / `student_view(x)`.
    """
    if not isinstance(term, FSP):
        raise TypeError(f"fsp_matrices needs an FSP term, got {type(term).__name__}.")
    return term.matrices(teacher_view, student_view, shuffled=shuffled)
