"""Inference latency, measured the same way for every model."""

import os
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


def machine_info():
    """`{"nproc", "cpu", "ram"}` of this machine, for benchmark reports."""
    cpu = ram = "unknown"
    for path, key in (("/proc/cpuinfo", "model name"), ("/proc/meminfo", "MemTotal")):
        try:
            with open(path) as handle:
                line = next((l for l in handle if l.startswith(key)), None)
        except OSError:
            line = None
        if line and key == "model name":
            cpu = line.split(":", 1)[1].strip()
        elif line:
            ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu": cpu, "ram": ram}
