"""A loss function's value and gradient in a tf.function with a dynamic batch
axis (optionally XLA), as inside a Distiller step."""

import tensorflow as tf


def value_and_gradient(fn, teacher, student, jit_compile):
    """fn(teacher, student) and its gradient with respect to the student."""
    spec = [tf.TensorSpec((None,) + teacher.shape[1:]), tf.TensorSpec((None,) + student.shape[1:])]

    @tf.function(input_signature=spec, jit_compile=jit_compile)
    def step(t, s):
        with tf.GradientTape() as tape:
            tape.watch(s)
            value = fn(t, s)
        return value, tape.gradient(value, s)

    value, grad = step(tf.constant(teacher), tf.constant(student))
    return float(value), grad.numpy()
