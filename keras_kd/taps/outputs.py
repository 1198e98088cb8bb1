"""Models with several outputs: which output a term reads, and the student's
loss per output.

An output is named as Keras names it: the key of a dict of outputs
(`keras.Model(x, {"segmentation": s, "classes": c})`), otherwise the name of
the layer that makes it. Taps:

- `"logits"`: the single output of a one-output model; for a model with
  several outputs, the output named "logits" (an error otherwise, listing
  the outputs, since "the logits" is then unclear).
- `"output:<name>"`: the output named `<name>` (also valid on a one-output
  model, for its one output).

The student's hard-label loss can be a dict `{output_name: loss}` as in
`keras.Model.compile(loss={...})`; the labels are then a dict keyed the same
way (see `OutputLosses`).
"""

import keras
from keras import ops

from keras_kd import labels as label_masks
from keras_kd.taps import nested

LOGITS = "logits"
OUTPUT_PREFIX = "output:"


def output_names(model):
    """The names of a graph model's outputs, in the order of `model.outputs`."""
    graph = nested.graph_of(model)
    struct = getattr(graph, "_outputs_struct", None)
    if isinstance(struct, dict):
        return [str(k) for k in keras.tree.flatten({k: k for k in struct})]
    return list(graph.output_names)


def is_output_tap(tap):
    """True for "logits" and "output:<name>"."""
    return tap == LOGITS or (isinstance(tap, str) and tap.startswith(OUTPUT_PREFIX))


def output_tap(name):
    """The tap that reads the output called `name`: "output:<name>"."""
    return f"{OUTPUT_PREFIX}{name}"


def default_taps(names):
    """The output taps every view of a model with outputs `names` returns."""
    if len(names) == 1:
        return (LOGITS,)
    taps = (LOGITS,) if LOGITS in names else ()
    return taps + tuple(output_tap(n) for n in names)


def output_index(names, tap, role, model_name):
    """The position in `model.outputs` of the output `tap` reads."""
    listing = [output_tap(n) for n in names]
    if tap == LOGITS:
        if len(names) == 1:
            return 0
        if LOGITS in names:
            return names.index(LOGITS)
        raise ValueError(
            f"The {role} '{model_name}' has {len(names)} outputs {names} and "
            "none is named 'logits', so a term reading 'logits' is unclear. "
            "Say which output it reads: keras_kd.losses.on_output(term, "
            f"'{listing[0]}') (taps: {listing}), or name that output "
            "'logits' (its layer name, or its key in a dict of outputs)."
        )
    name = tap[len(OUTPUT_PREFIX):]
    if name in names:
        return names.index(name)
    raise ValueError(
        f"Unknown tap '{tap}' on the {role} '{model_name}': its outputs are "
        f"{listing}. An output is named by its key in a dict of outputs, "
        "otherwise by the name of the layer that makes it."
    )


def is_label_dict(value, names):
    """True when `value` is a dict of labels keyed by some of the outputs
    `names` of a model with several outputs (not a dict of teacher taps)."""
    return (
        isinstance(value, dict)
        and names is not None
        and len(names) > 1
        and bool(value)
        and set(value) <= set(names)
    )


def predictions(results, names):
    """What the student loss and compiled metrics read from a view's results:
    the logits of a one-output model, else a dict output name -> tensor."""
    if names is None or len(names) == 1:
        return results[LOGITS]
    return {name: results[output_tap(name)] for name in names}


def _logit_taps(taps):
    return [tap for tap in taps if is_output_tap(tap)]


def check_read_outputs(teacher, student, losses, softmax_layer):
    """Before training: every output a logit-reading term uses exists, is
    logits (no softmax, also inside nested models) and, teacher and student
    alike, has the same number of classes.

    `softmax_layer(model, index)` returns the path of the softmax layer that
    makes output `index`, or None (`keras_kd.taps.views.softmax_output_layer`).
    """
    for term in losses:
        if not term.reads_logits:
            continue
        widths = {}
        for role, model, taps in (
            ("teacher", teacher, term.teacher_taps),
            ("student", student, term.student_taps),
        ):
            if not nested.is_graph_model(model):
                continue
            names = output_names(model)
            for tap in _logit_taps(taps):
                index = output_index(names, tap, role, model.name)
                softmax = softmax_layer(model, index)
                if softmax is not None:
                    raise ValueError(
                        f"The {role} '{model.name}' ends in a softmax (layer "
                        f"'{softmax}', output '{names[index]}'), but logit "
                        "distillation needs logits. Remove the final softmax "
                        "activation (train with from_logits=True, e.g. "
                        "classifier_activation=None in keras.applications) or "
                        "build keras.Model(model.input, <the softmax layer's "
                        "input>) when the softmax is a separate layer."
                    )
                widths.setdefault(role, (tap, tuple(model.outputs[index].shape)))
        if (
            getattr(term, "checks_class_count", True)
            and len(widths) == 2
            and widths["teacher"][1][-1] != widths["student"][1][-1]
        ):
            (t_tap, t_shape), (s_tap, s_shape) = widths["teacher"], widths["student"]
            raise ValueError(
                f"The teacher '{teacher.name}' outputs logits of shape {t_shape} "
                f"('{t_tap}') and the student '{student.name}' of shape "
                f"{s_shape} ('{s_tap}'): logit distillation (term "
                f"'{term.name}') needs the same classes in the same order. "
                "Give the student the teacher's head size, merge label spaces "
                "with keras_kd.teachers.Merged, or use feature-only terms (a "
                "teacher trained on another task may still teach through "
                "features)."
            )


class OutputLosses:
    """The student's hard-label loss for a model with several outputs.

    `OutputLosses({"segmentation": loss_a, "classes": loss_b}, names)` sums
    each output's loss against the labels of the same key: labels are a
    dict `{output_name: y}`. An output without a loss is not trained on
    labels (it may still be distilled). Each output's integer labels < 0 are
    masked as the one-output loss masks them (`keras_kd.labels`): unlabeled
    samples, or ignored pixels of dense labels.
    """

    def __init__(self, losses, names, resolve):
        unknown = sorted(set(losses) - set(names))
        if unknown:
            raise ValueError(
                f"compile(loss={{...}}) names the output(s) {unknown}, but the "
                f"student's outputs are {names}. Key the dict by output name "
                "(the key in a dict of outputs, otherwise the output layer's "
                "name)."
            )
        self.losses = {name: resolve(loss) for name, loss in losses.items() if loss is not None}
        if not self.losses:
            raise ValueError("compile(loss={...}) holds no loss; give at least one output a loss.")
        self.names = list(names)

    def __call__(self, y, y_pred, sample_weight=None):
        if not isinstance(y, dict):
            raise ValueError(
                f"The student loss is a dict over the outputs {sorted(self.losses)}, "
                f"so the labels must be a dict with those keys, got "
                f"{type(y).__name__}. Feed (x, {{'name': y_name, ...}}) batches."
            )
        missing = sorted(set(self.losses) - set(y))
        if missing:
            raise ValueError(
                f"The labels have the keys {sorted(y)} but the student loss "
                f"needs labels for the outputs {missing}."
            )
        total = ops.zeros((), "float32")
        for name, loss in self.losses.items():
            y_k, weight, scale = label_masks.mask_unlabeled(
                y[name], sample_weight, y_pred[name]
            )
            value = loss(y_k, y_pred[name], sample_weight=weight)
            total = total + ops.cast(value, "float32") * scale
        return total
