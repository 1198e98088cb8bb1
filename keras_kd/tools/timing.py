"""Inference latency, measured the same way for every model."""

import os
import time

import numpy as np


def compiled_forward(model):
    """`model(x, training=False)` as a `tf.function`: timing it gives the
    graph's cost, not Python's or `predict`'s per-call overhead."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False))


def _run(forward, batch):
    """One call, waited for: every output copied to numpy."""
    import tensorflow as tf

    return tf.nest.map_structure(np.asarray, forward(batch))


def latencies_ms(models, batch, repeats=30, warmup=5):
    """`{name: median wall time in ms}` of each model's compiled forward
    pass (`compiled_forward`) on `batch`.

    Every model is warmed up first (`warmup` calls each: tracing, kernel
    selection, thread pools), before ANY model is timed; then the timed calls
    go round the models in turn, `repeats` rounds. So no model pays for being
    measured first, and a passing load on the machine falls on all of them
    alike: two identical models get the same figure up to noise.
    """
    import tensorflow as tf

    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
        raise ValueError(f"warmup must be an integer >= 1, got {warmup!r}: the first call "
                         "traces the function and must not be timed.")
    batch = tf.convert_to_tensor(batch)
    forwards = {name: compiled_forward(model) for name, model in models.items()}
    for forward in forwards.values():
        for _ in range(warmup):
            _run(forward, batch)
    times = {name: [] for name in forwards}
    for _ in range(repeats):
        for name, forward in forwards.items():
            start = time.perf_counter()
            _run(forward, batch)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(spent) * 1000.0) for name, spent in times.items()}


def latency_ms(model, batch, repeats=30, warmup=5):
    """Median wall time in ms of one compiled forward pass of `model` on
    `batch`, after `warmup` untimed calls (`latencies_ms` of one model; to
    compare models, measure them together with `latencies_ms`)."""
    return latencies_ms({"model": model}, batch, repeats, warmup)["model"]


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
