"""Bases and helpers for terms that compare teacher layers with student layers.

- `SinglePairTerm`: one teacher tap against one student tap (FeatureMSE,
  FitNet, RKD, PKT, SP).
- `MultiPairTerm`: `teacher_layers[k]` against `student_layers[k]`
  (AttentionTransfer, Overhaul, ReviewKD).

- `FlattenedPairTerm`: a `SinglePairTerm` whose features are flattened per
  sample (the relational terms RKD, PKT, SP), and `zero_below_two_samples`,
  their guard for a batch of one sample.

Both check the layer names, set `teacher_taps` / `student_taps` and save the
names in `get_config`.
"""

from keras import ops

from keras_kd.checks.tensors import describe_shape
from keras_kd.losses._ops import as_name_list
from keras_kd.losses.base import DistillationLoss


class SinglePairTerm(DistillationLoss):
    """A term comparing one teacher tap with one student tap."""


    def __init__(self, teacher_layer, student_layer, weight=1.0, name=None, **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        for what, value in (("teacher_layer", teacher_layer),
                            ("student_layer", student_layer)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"{what} must be a layer name, got {value!r}.")
        self.teacher_layer = teacher_layer
        self.student_layer = student_layer
        self.teacher_taps = (teacher_layer,)
        self.student_taps = (student_layer,)

    def get_config(self):
        return {
            **super().get_config(),
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
        }


class MultiPairTerm(DistillationLoss):
    """A term comparing `teacher_layers[k]` with `student_layers[k]`.

    Each argument is a layer name or a non-empty list of them, of equal
    lengths. The taps are the distinct names, in order.
    """


    def __init__(self, teacher_layers, student_layers, weight=1.0, name=None, **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        self.teacher_layers = as_name_list(teacher_layers, "teacher_layers")
        self.student_layers = as_name_list(student_layers, "student_layers")
        if len(self.teacher_layers) != len(self.student_layers):
            raise ValueError(
                f"{type(self).__name__} pairs teacher and student layers one "
                f"to one, but got {len(self.teacher_layers)} teacher layers "
                f"{self.teacher_layers} and {len(self.student_layers)} "
                f"student layers {self.student_layers}."
            )
        self.teacher_taps = tuple(dict.fromkeys(self.teacher_layers))
        self.student_taps = tuple(dict.fromkeys(self.student_layers))

    def get_config(self):
        return {
            **super().get_config(),
            "teacher_layers": list(self.teacher_layers),
            "student_layers": list(self.student_layers),
        }


def sum_over_pairs(values):
    """The sum of per-pair values (scalars or per-sample `(batch,)` tensors).

    Example:

    >>> sum_over_pairs(v for v in (1.0, 2.0, 3.0))
    6.0
    """
    total = None
    for value in values:
        total = value if total is None else total + value
    return total


def zero_below_two_samples(loss, x):
    """`loss`, or exactly 0 when the batch `x` has fewer than 2 samples.

    `loss` must be finite there (the unselected branch of `where` still
    feeds its gradient with zeros, and 0 · NaN is NaN).
    """
    return ops.where(ops.shape(x)[0] >= 2, loss, ops.zeros_like(loss))


class FlattenedPairTerm(SinglePairTerm):
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
