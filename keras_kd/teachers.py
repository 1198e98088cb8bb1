"""Teachers made of several models: ensembles and merged label spaces.

- `Ensemble([t1, t2, ...])`: one teacher whose soft targets are the
  (weighted) arithmetic or geometric mean of the teachers' soft targets
  (Hinton et al. 2015, §3 average the ensemble's soft targets at the
  distillation temperature). It is a Functional `keras.Model`, usable
  wherever a single teacher is.
- `Merged({teacher_a: [classes], teacher_b: [classes]})`: teachers trained
  on different class subsets teach one student over the union of their
  classes, with the `MergedKD` term (Vongkulbhisal et al. 2019, "Unifying
  Heterogeneous Classifiers with Distillation", CVPR; Shen et al. 2019,
  "Amalgamating Knowledge towards Comprehensive Classification", AAAI).
  Needs no labels.
- `cache(teacher, dataset, ...)`: the teacher-output cache, re-exported from
  `keras_kd.teacher_cache`.

Feature taps per teacher. Keras forbids "/" in layer names and a nested
model's layers are not reachable from the outer graph, so both groups build,
for every teacher, a view sub-model that outputs the teacher's logits AND
the output and input of every layer from the same forward pass, call it on
the group's shared input, and answer `group.get_layer("teacher/layer")`
with an object whose `.output` / `.input` are those tensors of the group's
graph. So the taps `"teacher_name/layer_name"` and
`"teacher_name/layer_name:input"` work in any term, e.g.
`FeatureMSE("t1/relu2", "relu2")`, and each teacher still runs once per
step. `group.tap_names()` lists them. Taps of a layer shared inside a
teacher (used more than once) are not available; tap its consumer instead.
"""

import keras
import numpy as np
from keras import ops

from keras_kd.losses.base import (
    DistillationLoss,
    check_temperature,
    check_weight,
)
from keras_kd.scalars import is_integer
from keras_kd.taps import LOGITS, is_functional, output_is_softmax
from keras_kd.teacher_cache import cache  # noqa: F401  (keras_kd.teachers.cache)

_MODES = ("mean", "geometric")


# ----------------------------------------------------------------------
# Pure functions.
def _float32(x):
    return ops.cast(ops.convert_to_tensor(x), "float32")


def _mixture_weights(weights, count, what="Ensemble"):
    """Validated weights normalised to sum 1, as a float list."""
    if weights is None:
        return [1.0 / count] * count
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
        raise TypeError(f"{what}'s weights must be a list of numbers, got {weights!r}.")
    weights = [check_weight(w, f"{what} weight #{i}") for i, w in enumerate(weights)]
    if len(weights) != count:
        raise ValueError(
            f"{what} got {len(weights)} weights for {count} teachers; give one "
            "weight per teacher (or weights=None for equal weights)."
        )
    if any(w <= 0 for w in weights):
        raise ValueError(
            f"{what}'s weights must be > 0, got {weights}; drop a teacher "
            "instead of giving it weight 0."
        )
    total = sum(weights)
    return [w / total for w in weights]


def _check_mode(mode):
    if mode not in _MODES:
        raise ValueError(
            f"Unknown ensemble mode {mode!r}; use 'mean' (arithmetic mean of "
            "the probabilities) or 'geometric' (normalised geometric mean)."
        )
    return mode


def ensemble_logits(logits_list, mode="mean", weights=None, temperature=1.0):
    """Logits whose softmax at T is the teachers' averaged soft targets.

    With p_i = softmax(z_i / T) and weights w_i normalised to Σ w_i = 1:

        mode="mean":       out = T · log Σ_i w_i p_i
                           softmax(out / T) = Σ_i w_i p_i
        mode="geometric":  g = Σ_i w_i log p_i,  out = T · (g − logsumexp(g))
                           softmax(out / T) ∝ Π_i p_i^{w_i}

    Both are computed in float32 with `log_softmax` / `logsumexp` (no log of
    a probability that may underflow). `out / T` is a normalised
    log-probability. Distil with `KD(temperature=T)`, the same T: Hinton et
    al. average the soft targets at the distillation temperature; at any
    other T the mixture is a different distribution.

    Args:
        logits_list: a list of `(batch, classes)` logits, one per teacher.
        mode: `"mean"` or `"geometric"`.
        weights: one weight > 0 per teacher (normalised), or None (equal).
        temperature: T > 0.

    Returns:
        `(batch, classes)` float32 logits.

    Example:

    >>> import numpy as np
    >>> a = np.log(np.array([[0.8, 0.2]]))
    >>> b = np.log(np.array([[0.4, 0.6]]))
    >>> np.round(np.exp(np.asarray(ensemble_logits([a, b]))), 4)
    array([[0.6, 0.4]], dtype=float32)
    """
    if not isinstance(logits_list, (list, tuple)) or not logits_list:
        raise ValueError("ensemble_logits needs a non-empty list of logits.")
    mode = _check_mode(mode)
    temperature = check_temperature(temperature)
    weights = _mixture_weights(weights, len(logits_list))
    log_probs = ops.stack(
        [ops.log_softmax(_float32(z) / temperature, axis=-1) for z in logits_list],
        axis=0,
    )
    if mode == "mean":
        log_w = ops.convert_to_tensor(
            np.log(np.asarray(weights, "float32")).reshape(-1, 1, 1)
        )
        mixed = ops.logsumexp(log_probs + log_w, axis=0)
    else:
        w = ops.convert_to_tensor(np.asarray(weights, "float32").reshape(-1, 1, 1))
        summed = ops.sum(log_probs * w, axis=0)
        mixed = summed - ops.logsumexp(summed, axis=-1, keepdims=True)
    return mixed * temperature


def _check_class_indices(class_indices, widths, names, num_classes=None):
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


def merged_kd_per_sample(
    teacher_logits_list, student_logits, class_indices_list, temperature=4.0
):
    """The merged-teacher KD loss of each sample, `(batch,)`; see `merged_kd_loss`."""
    temperature = check_temperature(temperature)
    if not isinstance(teacher_logits_list, (list, tuple)):
        teacher_logits_list = [teacher_logits_list]
    s = _float32(student_logits)
    classes = s.shape[-1]
    teachers = [_float32(t) for t in teacher_logits_list]
    names = [f"#{k}" for k in range(len(teachers))]
    indices = _check_class_indices(
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


def merged_kd_loss(
    teacher_logits_list, student_logits, class_indices_list, temperature=4.0
):
    """KD from teachers that each know a subset of the student's classes.

    Teacher k outputs logits t_k over its classes, which are the student's
    classes `idx_k` (in that order). The student's distribution is
    re-normalised over each teacher's classes (a softmax of the gathered
    student logits), and

        loss = T² · mean_b Σ_k KL( softmax(t_k / T) ‖ softmax(s[:, idx_k] / T) )

    as in Vongkulbhisal et al. 2019 (Unifying Heterogeneous Classifiers,
    CVPR) with Hinton's T². No labels are needed. Classes may overlap
    between teachers; classes no teacher covers are not taught.

    Args:
        teacher_logits_list: a list of `(batch, n_k)` teacher logits.
        student_logits: `(batch, classes)` student logits.
        class_indices_list: for each teacher, its n_k student class indices
            (distinct, in range).
        temperature: T > 0.

    Returns:
        A float32 scalar.

    Example:

    >>> import numpy as np
    >>> a = np.array([[2.0, 0.0]])            # knows student classes 0, 1
    >>> b = np.array([[0.0, 1.0, 0.0]])       # knows student classes 3, 1, 2
    >>> s = np.zeros((1, 4))
    >>> round(float(merged_kd_loss([a, b], s, [[0, 1], [3, 1, 2]], 1.0)), 4)
    0.4511
    """
    return ops.mean(
        merged_kd_per_sample(
            teacher_logits_list, student_logits, class_indices_list, temperature
        )
    )


# ----------------------------------------------------------------------
# Multi-teacher graphs.
class _Members:
    """Holds the member models out of Keras's attribute tracking (their
    variables are reached through the per-teacher views, the group's
    layers, so saving them again under another path is avoided)."""

    def __init__(self, names, models):
        self.names = list(names)
        self.models = list(models)


class _TapLayer:
    """What `group.get_layer("teacher/layer")` returns: the layer's input and
    output tensors in the group's graph (enough for `keras_kd.taps`)."""

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


def _names_and_models(teachers, what):
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


def _check_members(names, models, what, same_classes):
    """Graph models, one input each, same input shapes, logits outputs."""
    shapes = []
    for name, model in zip(names, models):
        if not is_functional(model):
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


def _build_member_views(names, models, inputs):
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


class _TeacherGroup(keras.Model):
    """Shared machinery of `Ensemble` and `Merged` (a Functional model)."""

    def _build_group(self, names, models, what, same_classes, combine, name, kwargs):
        _check_members(names, models, what, same_classes)
        first = models[0].inputs[0]
        inputs = keras.Input(
            shape=tuple(first.shape)[1:], dtype=first.dtype, name=f"{name}_input"
        )
        member_logits, taps = _build_member_views(names, models, inputs)
        outputs = combine(member_logits)
        # super() past this class: Model.__init__ the first time (it injects
        # Functional into the class hierarchy), Functional.__init__ after.
        super(_TeacherGroup, self).__init__(inputs, outputs, name=name, **kwargs)
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


@keras.saving.register_keras_serializable(package="keras_kd")
class EnsembleLogits(keras.layers.Layer):
    """Combines teachers' logits with `ensemble_logits` (float32)."""

    def __init__(self, mode="mean", weights=None, temperature=1.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mode = _check_mode(mode)
        self.mixture_weights = None if weights is None else [float(w) for w in weights]
        self.temperature = check_temperature(temperature)

    def call(self, inputs):
        return ensemble_logits(
            list(inputs), self.mode, self.mixture_weights, self.temperature
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return {
            **config,
            "mode": self.mode,
            "weights": self.mixture_weights,
            "temperature": self.temperature,
        }


@keras.saving.register_keras_serializable(package="keras_kd")
class Ensemble(_TeacherGroup):
    """Several teachers as one: a Functional model averaging their soft targets.

    The output "logits" are `ensemble_logits(...)` of the teachers' logits:
    softmax(logits / T) is the weighted arithmetic mean (mode="mean") or the
    normalised weighted geometric mean (mode="geometric") of the teachers'
    softmax(z_i / T). Use it wherever a teacher goes; distil with
    `KD(temperature=T)` at the ensemble's T (Hinton et al. 2015 average the
    soft targets at the distillation temperature; with another T the
    student matches a different distribution than the ensemble's average).

    Feature taps address one teacher: `"teacher_name/layer_name"` (or
    `"teacher_name/layer_name:input"`), e.g.
    `FeatureMSE("resnet_a/block3_out", "block3_out")`; see the module
    docstring. Every teacher runs once per step.

    Args:
        teachers: a list of Functional/Sequential logits models with the same
            input shape and number of classes (named by `model.name`), or a
            dict `{name: model}` to choose the names.
        mode: `"mean"` (default) or `"geometric"`.
        weights: one weight > 0 per teacher (normalised to sum 1); None for
            equal weights.
        temperature: T > 0 at which the soft targets are averaged.
        name: the model's name.

    Example:

    ```python
    teacher = keras_kd.teachers.Ensemble([resnet, densenet], temperature=4)
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.KD(temperature=4)])
    ```
    """

    def __init__(
        self,
        teachers,
        mode="mean",
        weights=None,
        temperature=1.0,
        name="ensemble",
        **kwargs,
    ):
        names, models = _names_and_models(teachers, "Ensemble")
        mode = _check_mode(mode)
        temperature = check_temperature(temperature)
        mixture = _mixture_weights(weights, len(models))
        combine = EnsembleLogits(
            mode, mixture, temperature, name=f"{name}_logits"
        )
        self._build_group(names, models, "Ensemble", True, combine, name, kwargs)
        self.mode = mode
        self.temperature = temperature
        self.mixture_weights = mixture
        self._given_weights = None if weights is None else [float(w) for w in weights]

    def get_config(self):
        return {
            "name": self.name,
            "teachers": self._members_config(),
            "mode": self.mode,
            "weights": self._given_weights,
            "temperature": self.temperature,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["teachers"] = cls._members_from_config(config["teachers"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_kd")
class Merged(_TeacherGroup):
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
        merged, student, losses=[keras_kd.teachers.MergedKD(temperature=4)])
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
        names, models = _names_and_models([p[0] for p in pairs], "Merged")
        _check_members(names, models, "Merged", same_classes=False)
        if num_classes is not None:
            if not is_integer(num_classes) or num_classes < 1:
                raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
        widths = [m.outputs[0].shape[-1] for m in models]
        indices = _check_class_indices(
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


# ----------------------------------------------------------------------
# The term.
@keras.saving.register_keras_serializable(package="keras_kd")
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
        merged, student, losses=[keras_kd.teachers.MergedKD(temperature=4)])
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
            self.class_indices = _check_class_indices(
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
        _check_class_indices(self.class_indices, widths, self.teacher_names, s_width)

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
        return merged_kd_per_sample(
            parts, student[LOGITS], self.class_indices, self.temperature
        )

    def get_config(self):
        return {
            **super().get_config(),
            "temperature": self.temperature,
            "class_indices": self.class_indices,
        }


def _static_width(model):
    if not is_functional(model) or len(model.outputs) != 1:
        return None
    return model.outputs[0].shape[-1]


__all__ = [
    "Ensemble",
    "cache",
    "EnsembleLogits",
    "Merged",
    "MergedKD",
    "ensemble_logits",
    "merged_kd_loss",
    "merged_kd_per_sample",
]
