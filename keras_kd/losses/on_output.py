"""`on_output(term, ...)`: a logit term that reads another output.

A term such as `KD` reads `"logits"`. On a model with several outputs, say
which output it reads instead:

    keras_kd.losses.on_output(keras_kd.losses.KD(temperature=4), "segmentation")

The wrapped term computes exactly what it computes on "logits", on the
outputs named here (`"segmentation"` or `"output:segmentation"`; the teacher
and the student may use different names). Its metric name, weight and
schedules stay those of the wrapped term.
"""

import keras

from keras_kd.losses.base import DistillationLoss
from keras_kd.losses.registry import register_term
from keras_kd.taps.outputs import LOGITS, OUTPUT_PREFIX


def _as_output_tap(name, what):
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what} must be an output name, got {name!r}.")
    if name == LOGITS or name.startswith(OUTPUT_PREFIX):
        return name
    return OUTPUT_PREFIX + name


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class OnOutput(DistillationLoss):
    """Runs `term` on the named outputs in place of "logits".

    Args:
        term: a `DistillationLoss` whose taps include "logits".
        teacher_output: the teacher's output name (or "output:<name>").
        student_output: the student's output name; defaults to
            `teacher_output`.

    With labels given as a dict (one entry per output), the wrapped term
    receives the student output's labels.
    """

    def __init__(self, term, teacher_output, student_output=None, name=None, **kwargs):
        if isinstance(term, dict):  # from get_config
            term = keras.saving.deserialize_keras_object(term)
        if not isinstance(term, DistillationLoss):
            raise TypeError(
                f"on_output wraps a keras_kd DistillationLoss, got {term!r}."
            )
        if not term.reads_logits:
            raise ValueError(
                f"{type(term).__name__} '{term.name}' reads no 'logits' tap "
                f"(teacher {term.teacher_taps}, student {term.student_taps}); "
                "name the layers it reads directly instead of wrapping it."
            )
        kwargs.pop("weight", None)  # the wrapped term holds the weight
        super().__init__(weight=term.weight, name=name or f"{term.name}_on_output", **kwargs)
        self.term = term
        self.teacher_output = _as_output_tap(teacher_output, "teacher_output")
        self.student_output = _as_output_tap(
            student_output if student_output is not None else teacher_output,
            "student_output",
        )
        self.teacher_taps = tuple(
            self.teacher_output if t == LOGITS else t for t in term.teacher_taps
        )
        self.student_taps = tuple(
            self.student_output if t == LOGITS else t for t in term.student_taps
        )
        self.requires_labels = term.requires_labels
        self.checks_class_count = getattr(term, "checks_class_count", True)
        self.teacher_batch_statistics = term.teacher_batch_statistics

    @property
    def reads_logits(self):
        return True

    @property
    def metric_name(self):
        return self.term.metric_name

    @property
    def weight(self):
        return self.term.weight

    @weight.setter
    def weight(self, value):
        self.term.weight = value

    @property
    def weight_variable(self):
        return self.term.weight_variable

    def prepare(self, teacher, student):
        self.term.prepare(teacher, student)

    def build(self, teacher_shapes=None, student_shapes=None):
        inner_t = {
            (LOGITS if tap == self.teacher_output else tap): shape
            for tap, shape in (teacher_shapes or {}).items()
        }
        inner_s = {
            (LOGITS if tap == self.student_output else tap): shape
            for tap, shape in (student_shapes or {}).items()
        }
        if not self.term.built:
            self.term.build(inner_t, inner_s)
        self.built = True

    def call(self, teacher, student, labels=None, training=None):
        teacher = {
            (LOGITS if tap == self.teacher_output else tap): v for tap, v in teacher.items()
        }
        student = {
            (LOGITS if tap == self.student_output else tap): v for tap, v in student.items()
        }
        if isinstance(labels, dict):
            labels = labels.get(self.student_output[len(OUTPUT_PREFIX):])
        return self.term(teacher, student, labels=labels, training=training)

    def get_config(self):
        config = super().get_config()
        config.pop("weight", None)
        return {
            **config,
            "term": keras.saving.serialize_keras_object(self.term),
            "teacher_output": self.teacher_output,
            "student_output": self.student_output,
        }


def on_output(term, teacher_output, student_output=None):
    """`term` reading the output(s) named here instead of "logits"; see
    `OnOutput`.

    Example:

    ```python
    seg_kd = keras_kd.losses.on_output(keras_kd.losses.KD(temperature=4),
                                       "segmentation")
    ```
    """
    return OnOutput(term, teacher_output, student_output)
