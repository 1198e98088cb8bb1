"""`MergedKD`: KD from teachers that each know a subset of the student's
classes (a `keras_kd.teachers.Merged` teacher); Vongkulbhisal et al. 2019,
"Unifying Heterogeneous Classifiers with Distillation" (CVPR)."""

import keras
import numpy as np
from keras import ops

from keras_kd.losses._ops import to_float32
from keras_kd.losses.base import DistillationLoss
from keras_kd.losses.registry import register_term
from keras_kd.checks.numbers import check_temperature
from keras_kd.taps.nested import is_graph_model
from keras_kd.taps.views import LOGITS


def check_class_indices(class_indices, widths, names, num_classes=None):
    """Validates a class map; returns it as lists of ints."""
    if not isinstance(class_indices, (list, tuple)) or not class_indices:
        raise ValueError("class_indices must be a non-empty list, one list per teacher.")
    if len(class_indices) != len(names):
        raise ValueError(
            f"Got {len(class_indices)} class lists for {len(names)} teachers."
        )
    checked = []
    for name, indices, width in zip(names, class_indices, widths):
        try:
            values = [int(i) for i in indices]
        except (TypeError, ValueError):
            raise TypeError(
                f"The class indices of teacher '{name}' must be a list of "
                f"integers, got {indices!r}."
            ) from None
        if any(int(i) != i for i in np.asarray(indices, dtype="float64").ravel()):
            raise TypeError(
                f"The class indices of teacher '{name}' must be integers, got {indices!r}."
            )
        if width is not None and len(values) != width:
            raise ValueError(
                f"Teacher '{name}' outputs {width} logits but was given "
                f"{len(values)} class indices {values}; give one student "
                "class index per teacher logit, in the teacher's order."
            )
        duplicated = sorted({i for i in values if values.count(i) > 1})
        if duplicated:
            raise ValueError(
                f"Teacher '{name}' maps several of its logits to the same "
                f"student class(es) {duplicated}; each of its classes needs "
                "its own student class."
            )
        negative = [i for i in values if i < 0]
        if negative:
            raise ValueError(
                f"Teacher '{name}' has negative class indices {negative}."
            )
        if num_classes is not None:
            outside = [i for i in values if i >= num_classes]
            if outside:
                raise ValueError(
                    f"Teacher '{name}' maps to student classes {outside}, out "
                    f"of range for a student with {num_classes} classes "
                    f"(indices 0..{num_classes - 1})."
                )
        checked.append(values)
    return checked


def merged_kd_loss(
    teacher_logits_list, student_logits, class_indices_list, temperature=4.0
):
    """KD from teachers that each know a subset of the student's classes.

    Teacher k outputs logits t_k over its classes, which are the student's
    classes `idx_k` (in that order). The student's distribution is
    re-normalised over each teacher's classes (a softmax of the gathered
    student logits), and

        loss_b = T² · Σ_k KL( softmax(t_bk / T) ‖ softmax(s[b, idx_k] / T) )

    for each sample b (the `MergedKD` class averages over the batch with its
    `sample_weight`), as in Vongkulbhisal et al. 2019 (Unifying Heterogeneous Classifiers,
    CVPR) with Hinton's T². No labels are needed. Classes may overlap
    between teachers; classes no teacher covers are not taught.

    Args:
        teacher_logits_list: a list of `(batch, n_k)` teacher logits.
        student_logits: `(batch, classes)` student logits.
        class_indices_list: for each teacher, its n_k student class indices
            (distinct, in range).
        temperature: T > 0.

    Returns:
        float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> a = np.array([[2.0, 0.0]])            # knows student classes 0, 1
    >>> b = np.array([[0.0, 1.0, 0.0]])       # knows student classes 3, 1, 2
    >>> s = np.zeros((1, 4))
    >>> values = merged_kd_loss([a, b], s, [[0, 1], [3, 1, 2]], 1.0)
    >>> [round(float(v), 4) for v in np.asarray(values)]
    [0.4511]
    """
    temperature = check_temperature(temperature)
    if not isinstance(teacher_logits_list, (list, tuple)):
        teacher_logits_list = [teacher_logits_list]
    s = to_float32(student_logits)
    classes = s.shape[-1]
    teachers = [to_float32(t) for t in teacher_logits_list]
    names = [f"#{k}" for k in range(len(teachers))]
    indices = check_class_indices(
        class_indices_list, [t.shape[-1] for t in teachers], names, classes
    )
    total = None
    for t, idx in zip(teachers, indices):
        log_p = ops.log_softmax(ops.stop_gradient(t) / temperature, axis=-1)
        s_k = ops.take(s, np.asarray(idx, "int32"), axis=-1)
        log_q = ops.log_softmax(s_k / temperature, axis=-1)
        kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
        total = kl if total is None else total + kl
    return total * (temperature**2)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class MergedKD(DistillationLoss):
    """KD from a `Merged` teacher over a union of class subsets; see
    `merged_kd_loss`. Needs no labels, so the student may train on
    unlabeled inputs (`fit(x)` with `compile(loss=None)`).

    The term reads the column split and class map from the `Merged` teacher
    when the Distiller prepares it (or from `class_indices=`, e.g. for a
    teacher cache holding the concatenated logits). Its teacher logits are
    wider or narrower than the student's, so it sets
    `checks_class_count = False` for the Distiller's logits-width check.

    Args:
        temperature: T > 0 (default 4).
        class_indices: optional explicit map, one list of student classes per
            teacher; must agree with a `Merged` teacher's map.
        weight: the term's weight (default 1).

    Example:

    ```python
    merged = keras_kd.teachers.Merged({t_a: [0, 1, 2, 3, 4], t_b: [5, 6, 7, 8, 9]})
    distiller = keras_kd.Distiller(
        merged, student, losses=[keras_kd.losses.MergedKD(temperature=4)])
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)
    checks_class_count = False

    def __init__(self, temperature=4.0, class_indices=None, weight=1.0, name="merged_kd", **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        self.temperature = check_temperature(temperature)
        self.teacher_names = None
        self.class_indices = None
        if class_indices is not None:
            self.class_indices = check_class_indices(
                class_indices, [None] * len(class_indices),
                [f"#{k}" for k in range(len(class_indices))],
            )

    def prepare(self, teacher, student):
        found = getattr(teacher, "class_indices", None)
        names = getattr(teacher, "teacher_names", None)
        if found is None and self.class_indices is None:
            raise ValueError(
                f"MergedKD needs the teachers' class map: use a "
                "keras_kd.teachers.Merged teacher, or pass "
                f"class_indices=[...] (the teacher '{teacher.name}' has none)."
            )
        if found is not None:
            found = [list(map(int, idx)) for idx in found]
            if self.class_indices is not None and self.class_indices != found:
                raise ValueError(
                    f"MergedKD was given class_indices={self.class_indices} but "
                    f"the Merged teacher '{teacher.name}' maps {found}."
                )
            self.class_indices = found
        if names is None or len(names) != len(self.class_indices):
            names = [f"#{k}" for k in range(len(self.class_indices))]
        self.teacher_names = list(names)
        widths = getattr(teacher, "splits", None) or [len(i) for i in self.class_indices]
        t_width = _static_width(teacher)
        if t_width is not None and t_width != sum(widths):
            raise ValueError(
                f"The teacher '{teacher.name}' outputs {t_width} logits but "
                f"the class map {self.class_indices} covers {sum(widths)}."
            )
        s_width = _static_width(student)
        check_class_indices(self.class_indices, widths, self.teacher_names, s_width)

    def call(self, teacher, student, labels=None, training=None):
        if self.class_indices is None:
            raise ValueError(
                "MergedKD has no class map: give it a keras_kd.teachers.Merged "
                "teacher in a Distiller, or class_indices=[...]."
            )
        logits = teacher[LOGITS]
        parts, start = [], 0
        for idx in self.class_indices:
            parts.append(logits[:, start : start + len(idx)])
            start += len(idx)
        if logits.shape[-1] is not None and logits.shape[-1] != start:
            raise ValueError(
                f"MergedKD's teacher logits have {logits.shape[-1]} columns, "
                f"the class map covers {start}."
            )
        return merged_kd_loss(
            parts, student[LOGITS], self.class_indices, self.temperature
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "class_indices": self.class_indices,
        }


def _static_width(model):
    if not is_graph_model(model) or len(model.outputs) != 1:
        return None
    return model.outputs[0].shape[-1]
