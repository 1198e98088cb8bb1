"""Overhaul's margins (Heo et al. 2019, eq. 3): the expected negative
response of each teacher channel, read from the BatchNormalization layer in
front of each teacher ReLU, and the margin ReLU that applies them.

Computed once, in numpy, from the teacher's weights; the loss itself (the
partial L2 distance) and the term are in `keras_kd.losses.overhaul`.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_kd.losses._ops import to_float32


def _normal_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _normal_pdf(x):
    return math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


def overhaul_margin(bn_gamma, bn_beta):
    """The per-channel margin of the teacher's pre-ReLU distribution.

    A BatchNormalization layer makes each channel ~ N(m, s²) with m = β,
    s = |γ|; the margin is the expected value of its negative responses,
    E[x | x < 0] (the mean of a normal truncated above at 0):

        margin = m − s · φ(m/s) / Φ(−m/s)   if Φ(−m/s) > 0.001
               = −3 s                        otherwise

    with φ, Φ the standard normal pdf and cdf (Heo et al. 2019, eq. 3;
    `get_margin_from_BN` of the official code). Computed once, in numpy,
    outside the training step. A channel with γ = 0 is a constant β: its
    margin is min(β, 0).

    Args:
        bn_gamma, bn_beta: arrays of shape (channels,).

    Returns a float32 numpy array of shape (channels,).

    Example:

    >>> import numpy as np
    >>> [round(float(v), 4) for v in overhaul_margin([1.0, 2.0], [0.0, 10.0])]
    [-0.7979, -6.0]
    """
    gamma = np.asarray(bn_gamma, dtype="float64").reshape(-1)
    beta = np.asarray(bn_beta, dtype="float64").reshape(-1)
    if gamma.shape != beta.shape:
        raise ValueError(
            f"gamma and beta must have the same shape, got {gamma.shape} and "
            f"{beta.shape}."
        )
    margins = []
    for g, m in zip(gamma, beta):
        s = abs(float(g))
        m = float(m)
        if s == 0.0:
            margins.append(min(m, 0.0))
            continue
        cdf = _normal_cdf(-m / s)
        if cdf > 0.001:
            margins.append(m - s * _normal_pdf(m / s) / cdf)
        else:
            margins.append(-3.0 * s)
    return np.asarray(margins, dtype="float32")


def margin_relu(teacher_features, margin):
    """The teacher transform of Heo et al. 2019: max(t, margin).

    `margin` (channels,) broadcasts over the last (channel) axis.

    Example:

    >>> import numpy as np
    >>> np.asarray(margin_relu(np.array([[-2.0, 1.0]]), np.array([-1.0, -1.0]))).tolist()
    [[-1.0, 1.0]]
    """
    t = to_float32(teacher_features)
    return ops.maximum(t, ops.cast(margin, "float32"))


def is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        return (
            layer.max_value is None
            and float(layer.negative_slope) == 0.0
            and float(layer.threshold) == 0.0
        )
    if isinstance(layer, keras.layers.Activation):
        return layer.activation is keras.activations.relu
    return False


def get_layer(model, name, role):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"Overhaul: the {role} '{model.name}' has no layer named '{name}'. "
            f"Layers that exist: {[layer.name for layer in model.layers]}."
        ) from None


def _producer(layer):
    """The layer whose output feeds `layer` (None when not found)."""
    try:
        history = layer.input._keras_history
    except (AttributeError, ValueError):
        return None
    return getattr(history, "operation", None)


def _bn_gamma_beta(bn):
    channels = int(bn.moving_mean.shape[-1])
    gamma = (
        ops.convert_to_numpy(bn.gamma) if bn.scale else np.ones(channels, "float32")
    )
    beta = (
        ops.convert_to_numpy(bn.beta) if bn.center else np.zeros(channels, "float32")
    )
    return gamma, beta


def teacher_margins(teacher, teacher_layers, bn_layers=None, term_name="overhaul"):
    """One margin array per stage, from the BN layer feeding each teacher ReLU.

    Args:
        teacher: the teacher model.
        teacher_layers: names of teacher ReLU layers, one per stage.
        bn_layers: optional names of the BatchNormalization layer of each
            stage (default: the layer producing each ReLU's input).
        term_name: the term's name, for error messages.

    Returns a list of float32 numpy arrays of shape (channels,).
    """
    margins = []
    for i, name in enumerate(teacher_layers):
        layer = get_layer(teacher, name, "teacher")
        if not is_relu(layer):
            raise ValueError(
                f"Overhaul '{term_name}': the teacher layer '{name}' is a "
                f"{type(layer).__name__}, not a ReLU. Overhaul distils "
                "the pre-ReLU feature, so name separate ReLU layers "
                "(keras.layers.ReLU() or Activation('relu')); a "
                "convolution with activation='relu' has no pre-ReLU tap."
            )
        if bn_layers is not None:
            bn = get_layer(teacher, bn_layers[i], "teacher")
        else:
            bn = _producer(layer)
        if not isinstance(bn, keras.layers.BatchNormalization):
            found = "nothing" if bn is None else f"'{bn.name}' ({type(bn).__name__})"
            raise ValueError(
                f"Overhaul '{term_name}': the margin of the teacher ReLU "
                f"'{name}' comes from the BatchNormalization layer in "
                f"front of it, but its input comes from {found}. Pass "
                "bn_layers=[...] naming the BatchNormalization layer of "
                "each stage (e.g. the last BN of a residual block)."
            )
        gamma, beta = _bn_gamma_beta(bn)
        margins.append(overhaul_margin(gamma, beta))
    return margins
