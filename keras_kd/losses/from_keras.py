"""`from_keras(obj)`: keras.distillation losses as keras-kd terms.

`keras.distillation.LogitsDistillation(temperature=T, loss=...)` becomes
`KD(temperature=T)`: T² · KL(softmax(t/T) ‖ softmax(s/T)), Hinton et al.'s
loss. What Keras 3.15 computes depends on how the loss was given:

- `keras.losses.KLDivergence()` (an instance): softmax at T, KL, × T², the
  same as `KD` (equal values).
- `"kl_divergence"` (the default) or the function `keras.losses.kl_divergence`:
  `keras.losses.get` returns the plain function, which Keras's special case
  (`isinstance(loss, KLDivergence)`) does not catch, so the KL is taken of
  the temperature-scaled *logits* themselves (clipped to [1e-7, 1], no
  softmax) and without T²: not a distillation of probabilities. `from_keras`
  warns and converts to `KD`.
- `"categorical_crossentropy"` / `CategoricalCrossentropy(...)`: the teacher's
  scaled logits are used as the target distribution (no softmax) and there
  is no T². `from_keras` warns and converts to `KD` (with soft targets,
  cross-entropy and KL differ by the teacher's entropy, a constant).
- `"mse"` / `MeanSquaredError()`: logit matching on t/T and s/T, kept as
  `FeatureMSE("logits", "logits", weight=1/T²)`, which equals it.

`keras.distillation.FeatureDistillation(loss="mse", teacher_layer_name=a,
student_layer_name=b)` becomes `FeatureMSE(a, b)` (equal values; a layer
name of None reads the model output, "logits"). Other feature losses raise
a ValueError that names the way out.

Weights: Keras's Distiller minimises α·student_loss + (1 − α)·Σ wᵢ·lossᵢ
(α = `student_loss_weight`, wᵢ = `distillation_loss_weights`); keras-kd's
minimises student_loss_weight·student_loss + Σ weightᵢ·termᵢ. So use
`keras_kd.Distiller(..., student_loss_weight=α, losses=[from_keras(lᵢ,
weight=(1 − α)·wᵢ)])` for the same objective.
"""

import warnings

import keras

from keras_kd.losses.feature_mse import FeatureMSE
from keras_kd.losses.kd import KD
from keras_kd.losses.on_output import on_output
from keras_kd.taps.views import LOGITS

_KL_NAMES = ("kl_divergence", "kld", "kullback_leibler_divergence")
_CE_NAMES = ("categorical_crossentropy",)
_MSE_NAMES = ("mse", "mean_squared_error")


def _loss_name(loss):
    """A lower-case name for a loss given as a string, function or object."""
    if isinstance(loss, str):
        return loss.lower()
    if isinstance(loss, keras.losses.Loss):
        return type(loss).__name__
    return getattr(loss, "__name__", type(loss).__name__).lower()


def _logits_term(loss, temperature, weight, name):
    label = _loss_name(loss)
    if isinstance(loss, keras.losses.KLDivergence):
        return KD(temperature=temperature, weight=weight, name=name)
    if label in _KL_NAMES or label in _CE_NAMES or isinstance(
        loss, keras.losses.CategoricalCrossentropy
    ):
        what = (
            "takes the KL divergence of the temperature-scaled logits "
            "themselves (clipped to [1e-7, 1], no softmax) and drops T²"
            if label in _KL_NAMES
            else "uses the teacher's temperature-scaled logits as the target "
            "distribution (no softmax) and drops T²"
        )
        warnings.warn(
            f"keras.distillation.LogitsDistillation(loss={label!r}) {what}: "
            "Keras's value is not Hinton's distillation loss. Converted to "
            f"keras_kd.losses.KD(temperature={temperature}): "
            "T²·KL(softmax(t/T) ‖ softmax(s/T)); expect different loss values "
            "(and a different scale) than under keras.distillation.",
            UserWarning,
            stacklevel=3,
        )
        return KD(temperature=temperature, weight=weight, name=name)
    if label in _MSE_NAMES or isinstance(loss, keras.losses.MeanSquaredError):
        # Keras compares t/T with s/T: the MSE of the logits divided by T².
        return FeatureMSE(
            LOGITS, LOGITS, weight=weight / temperature**2, name=f"{name}_mse"
        )
    raise ValueError(
        f"from_keras cannot convert LogitsDistillation(loss={label!r}): keras-kd "
        "converts the KL/cross-entropy forms to KD and 'mse' to logit matching. "
        "For another loss write a keras_kd.losses.DistillationLoss subclass "
        "(see its docstring) or use keras_kd.losses.KD."
    )


def _feature_term(loss, teacher_tap, student_tap, weight, name):
    label = _loss_name(loss)
    if label in _MSE_NAMES or isinstance(loss, keras.losses.MeanSquaredError):
        return FeatureMSE(teacher_tap, student_tap, weight=weight, name=name)
    raise ValueError(
        f"from_keras converts FeatureDistillation with loss='mse' only, got "
        f"{label!r}. Use keras_kd.losses.FeatureMSE, FitNet, "
        "AttentionTransfer or a DistillationLoss subclass for another "
        "feature loss."
    )


def _per_output(loss, output_names, build, what):
    """A list of terms, one per non-None entry of a nested loss structure."""
    if isinstance(loss, dict):
        items = list(loss.items())
    else:
        if output_names is None or len(output_names) != len(loss):
            raise ValueError(
                f"{what} holds a list of {len(loss)} losses, one per model "
                "output; pass their output names in the same order: "
                "from_keras(obj, output_names=['segmentation', 'classes'])."
            )
        items = list(zip(output_names, loss))
    terms = [
        on_output(build(item, f"{name}"), name)
        for name, item in items
        if item is not None
    ]
    return terms


def from_keras(obj, weight=1.0, output_names=None):
    """Converts a `keras.distillation` loss object into keras-kd term(s).

    Args:
        obj: a `keras.distillation.LogitsDistillation` or
            `keras.distillation.FeatureDistillation`.
        weight: the term's weight (see the module docstring for Keras's
            (1 − α)·wᵢ).
        output_names: for a loss given as a list (one per model output), the
            outputs' names in that order; a dict of losses is keyed by them.

    Returns:
        A `DistillationLoss`, or a list of them (one per output, each
        reading its output through `on_output`) for a nested loss structure.
        A `UserWarning` says where Keras's computation differs from the
        converted term's (the default `loss="kl_divergence"` does).

    Example:

    >>> import warnings
    >>> import keras
    >>> with warnings.catch_warnings(record=True):
    ...     term = from_keras(keras.distillation.LogitsDistillation(temperature=3.0))
    >>> type(term).__name__, term.temperature
    ('KD', 3.0)
    """
    if isinstance(obj, keras.distillation.LogitsDistillation):
        temperature = float(obj.temperature)
        loss = obj.loss
        if isinstance(loss, (list, tuple, dict)):
            return _per_output(
                loss, output_names,
                lambda item, name: _logits_term(item, temperature, weight, f"kd_{name}"),
                "LogitsDistillation",
            )
        return _logits_term(loss, temperature, weight, "kd")
    if isinstance(obj, keras.distillation.FeatureDistillation):
        if isinstance(obj.loss, (list, tuple, dict)):
            raise ValueError(
                "from_keras converts FeatureDistillation with one loss; for "
                "several layers build one keras_kd.losses.FeatureMSE per pair "
                "of layers."
            )
        teacher_tap = obj.teacher_layer_name or LOGITS
        student_tap = obj.student_layer_name or LOGITS
        return _feature_term(obj.loss, teacher_tap, student_tap, weight, "feature_mse")
    raise TypeError(
        "from_keras converts keras.distillation.LogitsDistillation and "
        f"FeatureDistillation objects, got {type(obj).__name__}."
    )
