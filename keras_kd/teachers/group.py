"""Shared machinery of multi-teacher graphs (`Ensemble`, `Merged`).

Keras forbids "/" in layer names and a nested model's layers are not
reachable from the outer graph, so a group builds, for every teacher, a view
sub-model that outputs the teacher's logits AND the output and input of
every layer from the same forward pass, calls it on the group's shared
input, and answers `group.get_layer("teacher/layer")` with an object whose
`.output` / `.input` are those tensors of the group's graph. So the taps
`"teacher_name/layer_name"` and `"teacher_name/layer_name:input"` work in
any term, e.g. `FeatureMSE("t1/relu2", "relu2")`, and each teacher still
runs once per step. `group.tap_names()` lists them. Taps of a layer shared
inside a teacher (used more than once) are not available; tap its consumer
instead.
"""

import keras

from keras_kd.taps.nested import is_graph_model
from keras_kd.taps.views import output_is_softmax

class _Members:
    """Holds the member models out of Keras's attribute tracking (their
    variables are reached through the per-teacher views, the group's
    layers, so saving them again under another path is avoided)."""

    def __init__(self, names, models):
        self.names = list(names)
        self.models = list(models)


class _TapLayer:
    """What `group.get_layer("teacher/layer")` returns: the layer's input and
    output tensors in the group's graph (enough for `keras_kd.taps.views`)."""

    def __init__(self, name, output=None, input=None):
        self.name = name
        self._output = output
        self._input = input

    @property
    def output(self):
        if self._output is None:
            raise ValueError(f"'{self.name}' has no single output tensor to tap.")
        return self._output

    @property
    def input(self):
        if self._input is None:
            raise ValueError(
                f"'{self.name}' has no single input tensor to tap (several "
                "inputs, or an input layer)."
            )
        return self._input


def _single_tensor(getter):
    try:
        value = getter()
    except (AttributeError, ValueError, IndexError, TypeError):
        return None
    return value if isinstance(value, keras.KerasTensor) else None


def names_and_models(teachers, what):
    if isinstance(teachers, dict):
        names, models = list(teachers.keys()), list(teachers.values())
    elif isinstance(teachers, (list, tuple)):
        models = list(teachers)
        names = [getattr(m, "name", None) for m in models]
    else:
        raise TypeError(
            f"{what} takes a list of teacher models (or a dict name -> "
            f"model), got {type(teachers).__name__}."
        )
    if not models:
        raise ValueError(f"{what} needs at least one teacher.")
    for i, (name, model) in enumerate(zip(names, models)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"{what}'s teacher #{i} ({name!r}) is a "
                f"{type(model).__name__}, not a keras.Model."
            )
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(
                f"{what}'s teacher #{i} needs a non-empty name without '/', "
                f"got {name!r}."
            )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(
            f"{what}'s teachers share the name(s) {duplicated}; taps address "
            "a teacher by name, so give them distinct names: pass a dict "
            "{'name_a': teacher_a, 'name_b': teacher_b}."
        )
    return names, models


def check_members(names, models, what, same_classes):
    """Graph models, one input each, same input shapes, logits outputs."""
    shapes = []
    for name, model in zip(names, models):
        if not is_graph_model(model):
            raise TypeError(
                f"{what}'s teacher '{name}' is a subclassed "
                f"{type(model).__name__}; the group builds one graph on the "
                "teachers' shared input and needs Functional or Sequential "
                "models. Wrap it: inputs = keras.Input(shape); "
                "keras.Model(inputs, teacher(inputs))."
            )
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(
                f"{what}'s teacher '{name}' has {len(model.inputs)} inputs and "
                f"{len(model.outputs)} outputs; each teacher must take one "
                "input and return one logits tensor."
            )
        if output_is_softmax(model):
            raise ValueError(
                f"{what}'s teacher '{name}' ends in a softmax (layer "
                f"'{model.layers[-1].name}'); it must output logits. Use "
                "keras.Model(model.input, model.layers[-1].input) when the "
                "softmax is a separate layer."
            )
        output = tuple(model.outputs[0].shape)
        if len(output) != 2 or output[-1] is None:
            raise ValueError(
                f"{what}'s teacher '{name}' outputs shape {output}; a teacher "
                "must output (batch, classes) logits."
            )
        shapes.append((tuple(model.inputs[0].shape), output))
    first_in, first_out = shapes[0]
    for name, (in_shape, out_shape) in zip(names[1:], shapes[1:]):
        if len(in_shape) != len(first_in) or any(
            a is not None and b is not None and a != b
            for a, b in zip(in_shape[1:], first_in[1:])
        ):
            raise ValueError(
                f"{what}'s teacher '{name}' takes inputs of shape {in_shape} but "
                f"teacher '{names[0]}' takes {first_in}; the teachers see the "
                "same batch, so their input shapes must agree."
            )
        if same_classes and out_shape[-1] != first_out[-1]:
            raise ValueError(
                f"{what}'s teacher '{name}' outputs logits of shape {out_shape} "
                f"but teacher '{names[0]}' outputs {first_out}; an ensemble "
                "averages the same classes in the same order (use "
                "keras_kd.teachers.Merged for teachers of different classes)."
            )


def build_member_views(names, models, inputs):
    """Calls a taps view of each teacher on `inputs`.

    Returns the teachers' logits tensors and a dict "teacher/layer" ->
    _TapLayer whose tensors live in the graph rooted at `inputs`.
    """
    all_logits, taps = [], {}
    for name, model in zip(names, models):
        tensors = [model.outputs[0]]
        index = {id(model.outputs[0]): 0}

        def position(tensor):
            if tensor is None:
                return None
            if id(tensor) not in index:
                index[id(tensor)] = len(tensors)
                tensors.append(tensor)
            return index[id(tensor)]

        where = {}
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            out = position(_single_tensor(lambda: layer.output))
            inp = position(_single_tensor(lambda: layer.input))
            if out is not None or inp is not None:
                where[f"{name}/{layer.name}"] = (out, inp)
        view = keras.Model(model.inputs[0], tensors, name=f"{name}_taps")
        results = view(inputs)
        if not isinstance(results, (list, tuple)):
            results = [results]
        all_logits.append(results[0])
        for key, (out, inp) in where.items():
            taps[key] = _TapLayer(
                key,
                output=None if out is None else results[out],
                input=None if inp is None else results[inp],
            )
    return all_logits, taps


class TeacherGroup(keras.Model):
    """Shared machinery of `Ensemble` and `Merged` (a Functional model)."""

    def _build_group(self, names, models, what, same_classes, combine, name, kwargs):
        check_members(names, models, what, same_classes)
        first = models[0].inputs[0]
        inputs = keras.Input(
            shape=tuple(first.shape)[1:], dtype=first.dtype, name=f"{name}_input"
        )
        member_logits, taps = build_member_views(names, models, inputs)
        outputs = combine(member_logits)
        # super() past this class: Model.__init__ the first time (it injects
        # Functional into the class hierarchy), Functional.__init__ after.
        super(TeacherGroup, self).__init__(inputs, outputs, name=name, **kwargs)
        self._members = _Members(names, models)
        self._member_taps = taps

    @property
    def teachers(self):
        """The member models, in order."""
        return list(self._members.models)

    @property
    def teacher_names(self):
        """The names that address each teacher's taps ("name/layer")."""
        return list(self._members.names)

    def tap_names(self):
        """Every per-teacher tap: "teacher/layer" and "teacher/layer:input"."""
        names = []
        for key, tap in self._member_taps.items():
            if tap._output is not None:
                names.append(key)
            if tap._input is not None:
                names.append(f"{key}:input")
        return names

    def get_layer(self, name=None, index=None):
        """A top-level layer, or a teacher's layer as "teacher_name/layer_name".

        The latter returns a tap handle whose `.output` / `.input` are that
        layer's tensors inside this group's graph (what feature taps read).
        """
        if index is None and isinstance(name, str) and name in self._member_taps:
            return self._member_taps[name]
        if index is None and isinstance(name, str) and "/" in name:
            teacher = name.split("/", 1)[0]
            known = self.teacher_names
            if teacher in known:
                layers = sorted(
                    k.split("/", 1)[1] for k in self._member_taps if k.startswith(teacher + "/")
                )
                detail = f"Its tappable layers: {layers}."
            else:
                detail = f"Teachers: {known}."
            raise ValueError(
                f"No layer '{name}' in '{self.name}'. {detail} Address a "
                "teacher's layer as 'teacher_name/layer_name'."
            )
        return super().get_layer(name=name, index=index)

    def _members_config(self):
        return {
            name: keras.saving.serialize_keras_object(model)
            for name, model in zip(self._members.names, self._members.models)
        }

    @staticmethod
    def _members_from_config(members):
        return {
            name: keras.saving.deserialize_keras_object(model)
            for name, model in members.items()
        }
