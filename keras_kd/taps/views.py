"""Feature taps: one forward pass that returns the logits and named features.

`build_view(model, taps)` turns a Functional or Sequential model into a
`keras.Model` sharing the same layers and weights whose output is a dict
`{"logits": ..., "<tap>": ...}`. Calling it runs every layer once, so a
distiller with any number of feature terms runs the student once per step
(`keras.distillation` runs it twice as soon as a feature loss is used).

Tap names:
- `"logits"`: the model's output (for a model with several outputs, the
  output named "logits"; see `keras_kd.taps.outputs`).
- `"output:<name>"`: the output named `<name>` (the output layer's name, or
  the key of a dict of outputs).
- `"layer_name"`: that layer's output.
- `"layer_name:input"`: that layer's input, e.g. the pre-activation feature
  in front of a ReLU layer (Heo et al. 2019 distil before the ReLU).
- `"nested_model/layer_name"` (and `":input"`): a layer inside a nested
  Functional or Sequential model, e.g. `"resnet50/conv4_block6_out"` for a
  `keras.applications.ResNet50` used as a layer of a classifier; paths may go
  several models deep. The view then re-runs the model's graph with the
  nested models opened up (`keras_kd.taps.nested`), sharing every layer and
  weight, so the model still runs once per step.
"""

import keras

from keras_kd.taps import nested
from keras_kd.taps import outputs as model_outputs
from keras_kd.taps.outputs import LOGITS
_INPUT_SUFFIX = ":input"
_SOFTMAX_NAMES = ("softmax",)


def split_tap(tap):
    """Splits `"name:input"` into `("name", "input")`, `"name"` into output."""
    if not isinstance(tap, str) or not tap:
        raise TypeError(f"A tap name must be a non-empty string, got {tap!r}.")
    if tap.endswith(_INPUT_SUFFIX):
        return tap[: -len(_INPUT_SUFFIX)], "input"
    return tap, "output"


def _check_model(model, role):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"The {role} must be a keras.Model, got {type(model).__name__}. "
            "Wrap a layer or function in keras.Model(inputs, outputs), or "
            "load a saved model with keras.saving.load_model(path)."
        )
    if isinstance(model, keras.Sequential) and not model.built:
        raise ValueError(
            f"The {role} Sequential model '{model.name}' is not built, so its "
            "layers have no shapes yet. Start it with keras.Input(shape=...) "
            "or call model.build((None, *input_shape)) first."
        )


def layer_names(model):
    """The names a tap may use on `model`, in graph order."""
    names = [layer.name for layer in model.layers]
    if hasattr(model, "tap_names"):  # an Ensemble also exposes "teacher/layer"
        names += [n for n in model.tap_names() if n not in names]
    return names


def _tap_tensor(model, tap, role):
    name, which = split_tap(tap)
    try:
        layer = model.get_layer(name)
    except ValueError:
        inner = nested.nested_model_names(model)
        hint = (
            f" Nested models (tap inside one as 'model/layer'): {inner}."
            if inner else ""
        )
        raise ValueError(
            f"Unknown tap '{tap}' on the {role} '{model.name}': it has no "
            f"layer named '{name}'. Layers that exist: {layer_names(model)}."
            f"{hint} Use 'logits' for the model output and 'layer:input' for "
            "a layer's input."
        ) from None
    try:
        return layer.input if which == "input" else layer.output
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Cannot tap '{tap}' on the {role} '{model.name}': {error} A tap "
            "needs a layer used exactly once in the model's graph; for a "
            "shared layer, tap the layer that consumes its output instead."
        ) from None


def is_softmax_layer(layer):
    """True for a Softmax layer or a layer whose activation is softmax."""
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return name in _SOFTMAX_NAMES


def softmax_output_layer(model, output_index=0):
    """The path ("layer" or "nested/layer") of the softmax layer that makes
    the model's output `output_index`, looking through nested models; None
    when that output is not a softmax (or the model has no graph)."""
    if nested.is_graph_model(model):
        return nested.find_output_layer(model, output_index, is_softmax_layer)
    last = model.layers[-1] if getattr(model, "layers", None) else None
    if last is not None and is_softmax_layer(last):
        return last.name
    return None


def output_is_softmax(model):
    """True when the model's (first) output is probabilities: its last layer
    is a softmax, also when that layer sits inside a nested model."""
    return softmax_output_layer(model) is not None


class ModelView:
    """Runs a model once and returns its logits and tapped features as a dict.

    Args:
        model: a Functional or built Sequential `keras.Model`. A subclassed
            model works when only `"logits"` is tapped.
        taps: tap names (see the module docstring). The model's outputs are
            always included: `"logits"` for a one-output model; for several
            outputs, `"output:<name>"` for each (and `"logits"` when an
            output is named so).
        role: `"teacher"` or `"student"`, used in error messages.

    Attributes:
        output_names: the model's output names (None for a subclassed model).
        shapes: tap -> static shape.
    """

    def __init__(self, model, taps=(), role="model"):
        _check_model(model, role)
        self.model = model
        self.role = role
        requested = tuple(dict.fromkeys(taps))
        if not nested.is_graph_model(model):
            features = [tap for tap in requested if tap != LOGITS]
            if features:
                raise TypeError(
                    f"Feature taps {features} need a Functional or Sequential "
                    f"{role}, but '{model.name}' is a subclassed "
                    f"{type(model).__name__} whose layers have no symbolic "
                    "outputs. Rebuild it with the Functional API "
                    "(keras.Model(inputs, outputs)) or use logits-only terms "
                    "such as keras_kd.losses.KD."
                )
            self.taps = (LOGITS,)
            self.output_names = None
            self._graph = None
            self.shapes = {LOGITS: None}
            return
        self.output_names = model_outputs.output_names(model)
        self.taps = tuple(
            dict.fromkeys(model_outputs.default_taps(self.output_names) + requested)
        )
        features = [tap for tap in self.taps if not model_outputs.is_output_tap(tap)]
        prefixes = []
        for tap in features:
            name, _ = split_tap(tap)
            if nested.is_nested_path(model, name):
                prefixes += nested.resolve(model, name, tap, role)
        if prefixes:
            # Re-run the graph with those nested models opened, so that their
            # layers' tensors are reachable; every tap then comes from it.
            model_tensors, calls = nested.open_graph(model, prefixes)
        else:
            model_tensors, calls = list(model.outputs), None
        outputs = {}
        for tap in self.taps:
            if model_outputs.is_output_tap(tap):
                index = model_outputs.output_index(
                    self.output_names, tap, role, model.name
                )
                outputs[tap] = model_tensors[index]
            elif calls is not None:
                name, which = split_tap(tap)
                if not nested.is_nested_path(model, name):
                    _tap_tensor(model, tap, role)  # unknown names fail here
                outputs[tap] = nested.tap_from_calls(
                    calls, name, which, tap, role, model.name
                )
            else:
                outputs[tap] = _tap_tensor(model, tap, role)
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self._graph = keras.Model(
            inputs=inputs, outputs=outputs, name=f"{model.name}_view"
        )
        self.shapes = {tap: tuple(t.shape) for tap, t in outputs.items()}

    @property
    def input_shapes(self):
        """Static input shapes of the model, or None for a subclassed one."""
        if self._graph is None:
            return None
        return [tuple(t.shape) for t in self.model.inputs]

    def predictions(self, results):
        """What the hard-label loss and the compiled metrics read from this
        view's `results`: the logits, or for several outputs a dict output
        name -> tensor (keyed like the labels)."""
        return model_outputs.predictions(results, self.output_names)

    def __call__(self, x, training=False):
        if self._graph is None:
            return {LOGITS: self.model(x, training=training)}
        return self._graph(x, training=training)

    def predict_on_batch(self, x):
        """The view's outputs (numpy) on a numpy batch, in inference mode,
        through Keras's compiled predict function (jit-compiled on JAX)."""
        if self._graph is None:
            return {LOGITS: self.model.predict_on_batch(x)}
        return self._graph.predict_on_batch(x)


@keras.saving.register_keras_serializable(package="keras_kd")
class BatchStatisticsNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that always normalizes with the batch's statistics
    and never updates its moving averages.

    Used for a frozen teacher run "with BN in training mode" (Heo et al.
    2019): Keras runs a BN layer whose `trainable` is False in inference mode
    even when `training=True`, and a trainable one would move the teacher's
    statistics; this layer does neither.
    """

    def call(self, inputs, training=None, mask=None):
        axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
        x = keras.ops.cast(inputs, "float32")
        mean, variance = keras.ops.moments(x, axes=axes, keepdims=True)
        shape = [1] * len(inputs.shape)
        shape[self.axis] = inputs.shape[self.axis]
        outputs = (x - mean) * keras.ops.rsqrt(variance + self.epsilon)
        if self.scale:
            outputs = outputs * keras.ops.reshape(keras.ops.cast(self.gamma, "float32"), shape)
        if self.center:
            outputs = outputs + keras.ops.reshape(keras.ops.cast(self.beta, "float32"), shape)
        return keras.ops.cast(outputs, inputs.dtype)


def with_batch_statistics(model):
    """A frozen copy of `model` whose BatchNormalization layers use batch
    statistics (see `BatchStatisticsNormalization`); weights are copied."""

    def clone_layer(layer):
        config = layer.get_config()
        if type(layer) is keras.layers.BatchNormalization:
            return BatchStatisticsNormalization.from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone_layer)
    copy.set_weights(model.get_weights())
    copy.trainable = False
    return copy
