"""Inference latency, measured the same way for every model."""

import time

import numpy as np


def latency_ms(model, batch, repeats=30, warmup=5):
    """Median wall time in ms of one compiled forward pass on `batch`.

    The forward is a `tf.function` of `model(batch, training=False)`, so the
    figure is the graph's cost, not Python or `predict`'s per-call overhead.
    """
    import tensorflow as tf

    forward = tf.function(lambda x: model(x, training=False))
    batch = tf.convert_to_tensor(batch)
    for _ in range(warmup):
        forward(batch).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(batch).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)
