"""The gradient norm of each part of a Distiller's objective, for balancing.

`keras_kd.balance` sets a term's weight from how hard its gradient pulls
against the labels' gradient; this module measures those gradients. Keras
has no backend-neutral gradient, so each backend's autodiff is used here,
imported only when that backend is active (TensorFlow's tape, `jax.grad`,
`torch.autograd.grad`).
"""

import keras


def part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables):
    """`{part: ‖∂part/∂variables‖₂}` for every unweighted part of the
    objective on one batch (training mode), leaving every variable as it was
    (BatchNormalization statistics and seed generators included)."""
    if keras.backend.backend() == "jax":
        return _jax_part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables)
    if keras.backend.backend() == "torch":
        return _torch_part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables)
    return _tensorflow_part_gradient_norms(
        distiller, x, y, sample_weight, teacher_view, variables)


def _tensorflow_part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables):
    """`{part: ‖∂part/∂variables‖₂}` for every unweighted part of the
    objective on one batch (training mode), leaving every variable as it was.

    Training mode moves BatchNormalization statistics and seed generators;
    their values are saved first and put back, so a calibration leaves no
    trace on the run it calibrates.
    """
    import tensorflow as tf

    saved = [(v, tf.identity(v.value)) for v in distiller.non_trainable_variables]
    try:
        with tf.GradientTape(persistent=True) as tape:
            _, parts, _ = distiller._student_objective(
                x, y, sample_weight, teacher_view, training=True)
        norms = {}
        for name, value in parts.items():
            grads = [g for g in tape.gradient(value, variables) if g is not None]
            norms[name] = float(tf.linalg.global_norm(grads)) if grads else 0.0
        del tape
    finally:
        for variable, value in saved:
            variable.assign(value)
    return norms


def _jax_part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables):
    """`{part: ‖∂part/∂variables‖₂}` for every unweighted part of the
    objective on one batch (training mode). Runs statelessly: no variable
    (BatchNormalization statistics included) is changed."""
    import jax

    trainable = list(distiller.trainable_variables)
    wanted = {id(v) for v in variables}
    values = [v.value for v in trainable]
    fixed = [(v, v.value) for v in distiller.non_trainable_variables]

    def parts_of(trainable_values):
        with keras.StatelessScope(state_mapping=list(zip(trainable, trainable_values)) + fixed,
                                  collect_losses=True):
            _, parts, _ = distiller._student_objective(
                x, y, sample_weight, teacher_view, training=True)
        return parts

    names = list(parts_of(values))
    norms = {}
    for name in names:
        grads = jax.grad(lambda vals, n=name: parts_of(vals)[n])(values)
        squares = [jax.numpy.sum(jax.numpy.square(g))
                   for v, g in zip(trainable, grads) if id(v) in wanted]
        norms[name] = float(jax.numpy.sqrt(sum(squares))) if squares else 0.0
    return norms


def _torch_part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables):
    """`{part: ‖∂part/∂variables‖₂}` for every unweighted part of the
    objective on one batch (training mode), leaving every variable as it was:
    the gradients come from `torch.autograd.grad` (nothing is accumulated in
    the weights' `.grad`), and the non-trainable values training mode moves
    (BatchNormalization statistics, seed generators) are put back."""
    import torch

    with torch.no_grad():
        saved = [(v, v.value.detach().clone()) for v in distiller.non_trainable_variables]
        teacher_view = {tap: value.detach() for tap, value in teacher_view.items()}
    try:
        with torch.enable_grad():
            _, parts, _ = distiller._student_objective(
                x, y, sample_weight, teacher_view, training=True)
            values = [v.value for v in variables]
            norms = {}
            for name, value in parts.items():
                grads = []
                if value.requires_grad:
                    grads = [g for g in torch.autograd.grad(
                        value, values, retain_graph=True, allow_unused=True) if g is not None]
                squares = [torch.sum(torch.square(g.float())) for g in grads]
                norms[name] = float(torch.sqrt(sum(squares))) if squares else 0.0
    finally:
        for variable, value in saved:
            variable.assign(value)
    return norms
