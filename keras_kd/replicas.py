"""How many replicas share a global batch, and sums across them.

A leaf module: the objective and the label masks read it, and the
per-backend steps below them never need to be called back. On TensorFlow
the count is the current `tf.distribute` strategy's; on JAX the step sees the
whole global batch (`keras.distribution` shards it), so the count is 1. On
PyTorch it is 1 too: Keras 3 has no distribution for its torch trainer, whose
`fit` runs in one process on one device.
"""

import keras


def num_replicas():
    """Replicas in sync: the current `tf.distribute` strategy's count on
    TensorFlow (1 without one), the same count Keras's losses divide by; 1 on
    JAX, where the step sees the global batch, and on PyTorch, whose trainer
    runs on one device."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def sum_over_replicas(value):
    """`(value summed over the replicas, how many were summed)`: in a
    TensorFlow replica context of several replicas, the all-reduced sum;
    elsewhere (one replica, JAX, whose step sees the global batch, or
    PyTorch's one-device trainer)
    `(value, 1)`."""
    replicas = num_replicas()
    if replicas > 1:
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None:
            return context.all_reduce(tf.distribute.ReduceOp.SUM, value), replicas
    return value, 1
