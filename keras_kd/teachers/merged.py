"""`Merged`: teachers trained on different class subsets, as one teacher
over the union of their classes, taught with `keras_kd.losses.MergedKD`
(Vongkulbhisal et al. 2019, "Unifying Heterogeneous Classifiers with
Distillation", CVPR; Shen et al. 2019, "Amalgamating Knowledge towards
Comprehensive Classification", AAAI). Needs no labels.
"""

import keras

from keras_kd.losses.merged_kd import check_class_indices
from keras_kd.checks.numbers import is_integer
from keras_kd.teachers.group import TeacherGroup, check_members, names_and_models


@keras.saving.register_keras_serializable(package="keras_kd")
class Merged(TeacherGroup):
    """Teachers over different class subsets, as one teacher for `MergedKD`.

    A Functional model whose output concatenates the teachers' logits in
    order (width Σ n_k); `class_indices[k]` says which student class each of
    teacher k's logits is. The `MergedKD` term reads that map from the
    teacher (no labels needed): teacher k teaches the student's distribution
    re-normalised over its classes. Do not use it with plain `KD`: the
    concatenated logits are not the student's classes.

    Args:
        teachers: a dict `{teacher_model: [student class indices]}` or a list
            of `(teacher_model, indices)` pairs. Teacher k's list has one
            distinct student class per logit, in the teacher's order.
            Teachers are named by `model.name` (taps "name/layer").
        num_classes: the union's size (the student's classes); default
            max index + 1. `MergedKD` also checks the indices against the
            student's width.
        name: the model's name.

    Example:

    ```python
    # teacher_a knows digits 0-4 (5 logits), teacher_b digits 5-9.
    merged = keras_kd.teachers.Merged(
        {teacher_a: [0, 1, 2, 3, 4], teacher_b: [5, 6, 7, 8, 9]})
    distiller = keras_kd.Distiller(
        merged, student, losses=[keras_kd.losses.MergedKD(temperature=4)])
    distiller.compile(optimizer="adam").fit(unlabeled_x, epochs=10)
    ```
    """

    def __init__(self, teachers, num_classes=None, name="merged", **kwargs):
        if isinstance(teachers, dict):
            pairs = list(teachers.items())
        elif isinstance(teachers, (list, tuple)):
            pairs = list(teachers)
        else:
            raise TypeError(
                "Merged takes a dict {teacher: [student class indices]} or a "
                f"list of (teacher, indices) pairs, got {type(teachers).__name__}."
            )
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise TypeError(
                    f"Merged's entry #{i} must be a (teacher, class indices) "
                    f"pair, got {pair!r}."
                )
        names, models = names_and_models([p[0] for p in pairs], "Merged")
        check_members(names, models, "Merged", same_classes=False)
        if num_classes is not None:
            if not is_integer(num_classes) or num_classes < 1:
                raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
        widths = [m.outputs[0].shape[-1] for m in models]
        indices = check_class_indices(
            [p[1] for p in pairs], widths, names, num_classes
        )
        if num_classes is None:
            num_classes = max(max(idx) for idx in indices) + 1
        combine = keras.layers.Concatenate(axis=-1, dtype="float32", name=f"{name}_logits")
        if len(models) == 1:
            combine = keras.layers.Identity(dtype="float32", name=f"{name}_logits")

            def apply(logits, layer=combine):
                return layer(logits[0])
        else:

            def apply(logits, layer=combine):
                return layer(logits)

        self._build_group(names, models, "Merged", False, apply, name, kwargs)
        self.class_indices = indices
        self.splits = widths
        self.num_classes = num_classes

    def get_config(self):
        return {
            "name": self.name,
            "teachers": [
                [keras.saving.serialize_keras_object(m), idx]
                for m, idx in zip(self._members.models, self.class_indices)
            ],
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["teachers"] = [
            (keras.saving.deserialize_keras_object(m), idx)
            for m, idx in config["teachers"]
        ]
        return cls(**config)
