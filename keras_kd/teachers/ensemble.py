"""`Ensemble`: several teachers as one, averaging their soft targets
(Hinton et al. 2015, §3: the ensemble's soft targets at the distillation
temperature). A Functional `keras.Model`, usable wherever a single teacher is.
"""

import keras
import numpy as np
from keras import ops

from keras_kd.losses._ops import to_float32
from keras_kd.checks.numbers import check_temperature, check_weight
from keras_kd.teachers.group import TeacherGroup, names_and_models

_MODES = ("mean", "geometric")


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
        [ops.log_softmax(to_float32(z) / temperature, axis=-1) for z in logits_list],
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
class Ensemble(TeacherGroup):
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
        names, models = names_and_models(teachers, "Ensemble")
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
