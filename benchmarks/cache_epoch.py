"""Epoch time with a cached teacher vs a live teacher vs the student alone.

    python benchmarks/cache_epoch.py [--rounds 5] [--write]

The reference pair and data of shared/ANCHORS.md (via benchmarks/step_time.py):
4096 synthetic 32×32×3 images, batch 128 (32 steps per epoch), Adam(1e-3),
KD at T = 4, student loss weight 0.5. Per round, in a shuffled order, one
epoch of each configuration (compiled and warmed up beforehand; the cache is
computed before the rounds, and its cost is reported separately):

- student alone (`student.fit`),
- keras_kd Distiller + KD, live teacher,
- keras_kd Distiller + KD on `keras_kd.teachers.caching.cache(...)` outputs,
- keras.distillation Distiller + LogitsDistillation (live teacher).

Reports medians over rounds of the epoch time and of the per-round ratio to
the student-alone epoch. `--write` replaces the block between the
`cache-epoch` markers in BENCHMARKS.md.
"""

import argparse
import os
import platform
import random
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import step_time  # noqa: E402  (the shared reference pair)
from report_block import write_block  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd.teachers.caching.teacher_cache import cache  # noqa: E402

START, END = "<!-- cache-epoch:start -->", "<!-- cache-epoch:end -->"


def dataset():
    rng = np.random.default_rng(1234)
    x = rng.random((4096, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, size=4096).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(128, drop_remainder=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    data = dataset()
    teacher = step_time.build_teacher()

    def student_alone():
        student = step_time.build_student()
        student.compile(optimizer=keras.optimizers.Adam(1e-3), loss=step_time.student_loss())
        return student, data

    def kd(source):
        distiller = keras_kd.Distiller(teacher, step_time.build_student(),
                                       losses=[keras_kd.losses.KD(temperature=4.0, weight=0.5)],
                                       student_loss_weight=0.5)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), loss=step_time.student_loss())
        return distiller, source

    def keras_own():
        distiller = keras.distillation.Distiller(
            teacher, step_time.build_student(),
            distillation_losses=[keras.distillation.LogitsDistillation(
                temperature=4.0, loss=keras.losses.KLDivergence())],
            student_loss_weight=0.5)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), loss=step_time.student_loss())
        return distiller, data

    start = time.perf_counter()
    cached = cache(teacher, data).cache()  # outputs in memory; one pass to fill tf.data's cache
    for _ in cached:
        pass
    cache_seconds = time.perf_counter() - start

    configs = {
        "student alone": student_alone(),
        "keras_kd KD, live teacher": kd(data),
        "keras_kd KD, cached teacher": kd(cached),
        "keras.distillation LogitsDistillation": keras_own(),
    }
    for model, source in configs.values():  # compile + warm-up
        model.fit(source, epochs=1, verbose=0)
    times = {name: [] for name in configs}
    order = list(configs)
    for round_index in range(args.rounds):
        random.Random(round_index).shuffle(order)
        for name in order:
            model, source = configs[name]
            begin = time.perf_counter()
            model.fit(source, epochs=1, verbose=0)
            times[name].append(time.perf_counter() - begin)
        print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
            f"{n} {times[n][-1]:.2f}s" for n in configs), flush=True)

    base = np.array(times["student alone"])
    lines = [
        START,
        "## Epoch time: cached vs live teacher (`benchmarks/cache_epoch.py`)",
        "",
        f"Command: `python benchmarks/cache_epoch.py --rounds {args.rounds} --write`; "
        f"one epoch = 32 steps of batch 128 on the reference pair; {args.rounds} rounds, "
        f"shuffled order; {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}. Computing the cache "
        f"(one teacher pass over the data, kept in memory) took {cache_seconds:.1f} s once.",
        "",
        "| configuration | median epoch (s) | min–max (s) | ratio to student-alone epoch, median (min–max) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        values = np.array(values)
        ratio = values / base
        lines.append(f"| {name} | {np.median(values):.2f} | {values.min():.2f}–{values.max():.2f} | "
                     f"{np.median(ratio):.3f} ({ratio.min():.3f}–{ratio.max():.3f}) |")
    cached_vs_keras = np.array(times["keras.distillation LogitsDistillation"]) / np.array(
        times["keras_kd KD, cached teacher"])
    lines += ["", f"keras.distillation's epoch ÷ keras_kd's cached epoch: median "
              f"{np.median(cached_vs_keras):.2f}× (target ≤ 1.10 for cached ÷ student alone).", END]
    block = "\n".join(lines)
    print("\n" + block)
    if args.write:
        write_block(START, END, block)


if __name__ == "__main__":
    main()
