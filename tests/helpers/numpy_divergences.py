"""Plain-numpy references of the token-level divergences (kd, reverse KL,
generalized JSD, skew KL, TVD), float64, written from the formulas of the
papers with no keras_kd code, and their gradients by central finite
differences of those formulas (so no derivative is shared with the code
under test). Also the backend's own value-and-gradient of a loss function.
"""

import keras
import numpy as np
from keras import ops


def log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _kl(log_a, log_b):
    """Σ a·(log a − log b) over the last axis, 0·log 0 = 0."""
    a = np.exp(log_a)
    return np.where(a > 0, a * (log_a - log_b), 0.0).sum(axis=-1)


def _log_mix(log_a, log_b, weight_a):
    """log(w·a + (1−w)·b) from log a and log b."""
    return np.logaddexp(log_a + np.log(weight_a), log_b + np.log1p(-weight_a))


def divergence(name, teacher, student, temperature=1.0, **kwargs):
    """The divergence `name` at each position (all axes but the last), float64.

    p = softmax(t/T) (teacher), q = softmax(s/T) (student):
      kd:               T² · KL(p ‖ q)                                (Hinton et al.)
      reverse_kl:       KL(q ‖ p)
      generalized_jsd:  β·KL(p ‖ m) + (1−β)·KL(q ‖ m), m = βp + (1−β)q;
                        KL(p ‖ q) at β = 0 and KL(q ‖ p) at β = 1      (GKD, TRL)
      skew_kl:          KL(p ‖ αp + (1−α)q), reverse: KL(q ‖ αq + (1−α)p)  (DistiLLM)
      tvd:              ½ Σ |p − q|
    """
    log_p = log_softmax(np.asarray(teacher, np.float64) / temperature)
    log_q = log_softmax(np.asarray(student, np.float64) / temperature)
    if name == "kd":
        return temperature**2 * _kl(log_p, log_q)
    if name == "reverse_kl":
        return _kl(log_q, log_p)
    if name == "generalized_jsd":
        beta = kwargs.get("beta", 0.5)
        if beta == 0:
            return _kl(log_p, log_q)
        if beta == 1:
            return _kl(log_q, log_p)
        log_m = _log_mix(log_p, log_q, beta)
        return beta * _kl(log_p, log_m) + (1 - beta) * _kl(log_q, log_m)
    if name == "skew_kl":
        alpha = kwargs.get("alpha", 0.1)
        if kwargs.get("reverse", False):
            return _kl(log_q, _log_mix(log_q, log_p, alpha) if alpha else log_p)
        return _kl(log_p, _log_mix(log_p, log_q, alpha) if alpha else log_q)
    if name == "tvd":
        return 0.5 * np.abs(np.exp(log_p) - np.exp(log_q)).sum(axis=-1)
    raise ValueError(name)


def finite_difference_gradients(name, teacher, student, weights, temperature=1.0, step=1e-6,
                                **kwargs):
    """d Σ weights·divergence / d (teacher, student), by central differences."""
    teacher = np.asarray(teacher, np.float64)
    student = np.asarray(student, np.float64)

    def total(t, s):
        return float((divergence(name, t, s, temperature, **kwargs) * weights).sum())

    gradients = []
    for side in (0, 1):
        base = (teacher, student)[side]
        out = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[index] += step
            minus[index] -= step
            args_plus = (plus, student) if side == 0 else (teacher, plus)
            args_minus = (minus, student) if side == 0 else (teacher, minus)
            out[index] = (total(*args_plus) - total(*args_minus)) / (2 * step)
        gradients.append(out)
    return tuple(gradients)


def backend_value_and_gradients(function, teacher, student, weights):
    """Σ weights·function(t, s) and its gradients with respect to t and s, by
    the current backend's autodiff, as numpy."""
    weights = ops.convert_to_tensor(np.asarray(weights, np.float32))
    if keras.backend.backend() == "jax":
        import jax

        value, grads = jax.value_and_grad(
            lambda a, b: ops.sum(function(a, b) * weights), argnums=(0, 1))(
                ops.convert_to_tensor(teacher), ops.convert_to_tensor(student))
    elif keras.backend.backend() == "torch":
        import torch

        t = torch.tensor(np.asarray(teacher, np.float32), requires_grad=True)
        s = torch.tensor(np.asarray(student, np.float32), requires_grad=True)
        value = torch.sum(function(t, s) * weights)
        grads = torch.autograd.grad(value, (t, s), allow_unused=True)
        grads = tuple(torch.zeros_like(x) if g is None else g for x, g in zip((t, s), grads))
        value = value.detach()
    else:
        import tensorflow as tf

        t, s = tf.Variable(teacher), tf.Variable(student)
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(function(t, s) * weights)
        grads = tape.gradient(value, [t, s])
    return float(value), tuple(np.asarray(ops.convert_to_numpy(g)) for g in grads)
