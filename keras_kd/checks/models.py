"""What a `Distiller` is given, checked before anything is built.

`check_losses` and `check_models` run first in `Distiller.__init__`; each
error names the model, the term or the shape, and the fix.
"""

import warnings

import keras

from keras_kd.taps import outputs as model_outputs
from keras_kd.losses.base import DistillationLoss
from keras_kd.taps.nested import is_graph_model
from keras_kd.taps.views import softmax_output_layer


def _is_keras_distillation_loss(obj):
    """A `keras.distillation` loss object (LogitsDistillation, FeatureDistillation)."""
    base = getattr(getattr(keras, "distillation", None), "DistillationLoss", None)
    return base is not None and isinstance(obj, base)


def _output_names(student):
    try:
        return list(student.output_names)
    except Exception:  # an unbuilt or subclassed model has none
        return None


def _from_keras(term, student):
    """keras-kd term(s) for a `keras.distillation` loss (`losses.from_keras`),
    its warning re-raised at the user's `Distiller(...)` line."""
    from keras_kd.losses.from_keras import from_keras

    output_names = (_output_names(student) if isinstance(getattr(term, "loss", None), (list, tuple))
                    else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = from_keras(term, output_names=output_names)
    for warning in caught:
        # check_losses <- Distiller.__init__ <- the user's Distiller(...)
        warnings.warn(warning.message, warning.category, stacklevel=4)
    return made if isinstance(made, list) else [made]


def check_losses(losses, student=None):
    """`losses` as a list of `DistillationLoss` terms with distinct metric names.

    A `keras.distillation.LogitsDistillation` or `FeatureDistillation` is
    converted as `keras_kd.losses.from_keras` does, with its warning where
    Keras's value differs (a loss given per output as a list is matched to
    the `student`'s output names)."""
    if isinstance(losses, DistillationLoss) or _is_keras_distillation_loss(losses):
        losses = [losses]
    if losses is None:
        losses = []
    if isinstance(losses, (str, bytes)) or not isinstance(
        losses, (list, tuple)
    ):
        raise TypeError(
            "losses must be a DistillationLoss or a list of them, got "
            f"{losses!r}. Example: losses=[keras_kd.losses.KD("
            "temperature=4)]."
        )
    terms = []
    for i, term in enumerate(losses):
        if _is_keras_distillation_loss(term):
            terms.extend(_from_keras(term, student))
            continue
        if not isinstance(term, DistillationLoss):
            raise TypeError(
                f"losses[{i}] is {term!r} ({type(term).__name__}), not a "
                "keras_kd.losses.DistillationLoss. Pass a term object "
                "such as keras_kd.losses.KD(temperature=4) (or a "
                "keras.distillation.LogitsDistillation / FeatureDistillation, "
                "converted); a plain Keras loss belongs in compile(loss=...), "
                "where it applies to the labels."
            )
        terms.append(term)
    losses = terms
    names = [term.metric_name for term in losses]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(
            f"Two terms share the metric name(s) {duplicated}; give each "
            "a distinct name=..., e.g. FeatureMSE(..., name='hint2')."
        )
    return losses


def check_models(teacher, student, losses):
    """Refuses a teacher/student pair the terms cannot distil between: not
    models, the same object, different input shapes, or outputs that the
    logit-reading terms cannot read."""
    for role, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"The {role} must be a keras.Model, got "
                f"{type(model).__name__}. Load a saved model with "
                "keras.saving.load_model(path) or build one with "
                "keras.Model(inputs, outputs)."
            )
    if teacher is student:
        raise ValueError(
            "The teacher and the student are the same model object. For "
            "self-distillation, clone the student as the teacher: "
            "keras.models.clone_model(student) with its weights."
        )
    t_inputs = _input_shapes(teacher)
    s_inputs = _input_shapes(student)
    if t_inputs is not None and s_inputs is not None:
        if not _shapes_compatible(t_inputs, s_inputs):
            raise ValueError(
                f"The teacher '{teacher.name}' takes inputs of shape "
                f"{t_inputs} but the student '{student.name}' takes "
                f"{s_inputs}; both see the same batch. Resize inside the "
                "model (e.g. a keras.layers.Resizing layer first) so the "
                "input shapes agree."
            )
    if not any(term.reads_logits for term in losses):
        return
    merged = getattr(teacher, "class_indices", None)
    # Each output a term reads: named, logits (no softmax, also inside a
    # nested model), the same classes on both sides.
    model_outputs.check_read_outputs(
        teacher, student,
        [t for t in losses if merged is None or not getattr(t, "checks_class_count", True)],
        softmax_output_layer,
    )
    readers = [
        t.name for t in losses
        if t.reads_logits and getattr(t, "checks_class_count", True)
    ]
    if readers and merged is not None:
        raise ValueError(
            f"The teacher '{teacher.name}' is a Merged teacher whose logits "
            "are several teachers' class subsets side by side, not the "
            f"student's classes; the terms {readers} would compare them "
            "column by column. Use keras_kd.losses.MergedKD, which "
            "matches each teacher against its own student classes."
        )


def _input_shapes(model):
    if not is_graph_model(model):
        return None
    return [tuple(t.shape)[1:] for t in model.inputs]


def _shapes_compatible(a, b):
    if len(a) != len(b):
        return False
    for sa, sb in zip(a, b):
        if len(sa) != len(sb):
            return False
        if any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
            return False
    return True

