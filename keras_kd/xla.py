"""Whether the computation being traced is compiled by XLA.

A leaf module that dispatches per backend, as `replicas.py`: JAX always
compiles with XLA; TensorFlow does inside `tf.function(jit_compile=True)`
(what Keras's `jit_compile="auto"` gives `fit` on TensorFlow) and does not in
eager mode or in a plain `tf.function`. The chunked token-level losses read
it: under XLA a loop over chunks keeps one chunk alive at a time (XLA
updates the gradient in place), while TensorFlow's graph executor does
better with the chunks unrolled (a loop's in-place update is a full copy
there); each choice measured in benchmarks/lm_memory.py.
"""

import keras


def compiled_by_xla():
    """True when the ops traced now will be compiled by XLA (JAX; TensorFlow
    inside `jit_compile=True`), False otherwise (eager TensorFlow, a plain
    `tf.function`, torch, numpy)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend != "tensorflow":
        return False
    import tensorflow as tf

    if tf.executing_eagerly():
        return False
    try:  # TensorFlow's own test of an XLA context (TensorArray and while_v2 read it)
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - moved in a later TensorFlow
        return True  # Keras's fit compiles with XLA by default
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
