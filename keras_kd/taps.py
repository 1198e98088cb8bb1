"""Feature taps: one forward pass that returns the logits and named features.

`build_view(model, taps)` turns a Functional or Sequential model into a
`keras.Model` sharing the same layers and weights whose output is a dict
`{"logits": ..., "<tap>": ...}`. Calling it runs every layer once, so a
distiller with any number of feature terms runs the student once per step
(`keras.distillation` runs it twice as soon as a feature loss is used).

Tap names:
- `"logits"`: the model's output.
- `"layer_name"`: that layer's output.
- `"layer_name:input"`: that layer's input, e.g. the pre-activation feature
  in front of a ReLU layer (Heo et al. 2019 distil before the ReLU).
"""

import keras

LOGITS = "logits"
_INPUT_SUFFIX = ":input"
_SOFTMAX_NAMES = ("softmax",)


def split_tap(tap):
    """Splits `"name:input"` into `("name", "input")`, `"name"` into output."""
    if not isinstance(tap, str) or not tap:
        raise TypeError(f"A tap name must be a non-empty string, got {tap!r}.")
    if tap.endswith(_INPUT_SUFFIX):
        return tap[: -len(_INPUT_SUFFIX)], "input"
    return tap, "output"


def is_functional(model):
    """True for Functional and built Sequential models (they have a graph)."""
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


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
        raise ValueError(
            f"Unknown tap '{tap}' on the {role} '{model.name}': it has no "
            f"layer named '{name}'. Layers that exist: {layer_names(model)}. "
            "Use 'logits' for the model output and 'layer:input' for a "
            "layer's input."
        ) from None
    try:
        return layer.input if which == "input" else layer.output
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"Cannot tap '{tap}' on the {role} '{model.name}': {error} A tap "
            "needs a layer used exactly once in the model's graph; for a "
            "shared layer, tap the layer that consumes its output instead."
        ) from None


def output_is_softmax(model):
    """True when the model's last layer turns logits into probabilities."""
    last = model.layers[-1] if getattr(model, "layers", None) else None
    if last is None:
        return False
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return name in _SOFTMAX_NAMES


class ModelView:
    """Runs a model once and returns its logits and tapped features as a dict.

    Args:
        model: a Functional or built Sequential `keras.Model`. A subclassed
            model works when only `"logits"` is tapped.
        taps: tap names (see the module docstring). `"logits"` is always
            included.
        role: `"teacher"` or `"student"`, used in error messages.
    """

    def __init__(self, model, taps=(), role="model"):
        _check_model(model, role)
        self.model = model
        self.role = role
        self.taps = tuple(dict.fromkeys((LOGITS,) + tuple(taps)))
        features = [tap for tap in self.taps if tap != LOGITS]
        if not is_functional(model):
            if features:
                raise TypeError(
                    f"Feature taps {features} need a Functional or Sequential "
                    f"{role}, but '{model.name}' is a subclassed "
                    f"{type(model).__name__} whose layers have no symbolic "
                    "outputs. Rebuild it with the Functional API "
                    "(keras.Model(inputs, outputs)) or use logits-only terms "
                    "such as keras_kd.losses.KD."
                )
            self._graph = None
            self.shapes = {LOGITS: None}
            return
        if len(model.outputs) != 1:
            raise ValueError(
                f"The {role} '{model.name}' has {len(model.outputs)} outputs; "
                "keras-kd reads one logits output. Build a view of the model "
                "that returns the logits alone: keras.Model(model.inputs, "
                "model.outputs[i])."
            )
        outputs = {LOGITS: model.outputs[0]}
        for tap in features:
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

    def __call__(self, x, training=False):
        if self._graph is None:
            return {LOGITS: self.model(x, training=training)}
        return self._graph(x, training=training)


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
