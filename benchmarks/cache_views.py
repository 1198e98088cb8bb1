"""Epoch time with an augmented teacher cache vs the student alone, same augmentation.

    nice -n 10 python benchmarks/cache_views.py [--rounds 7] [--pairs reference fmnist]

Pairs: the reference pair of shared/ANCHORS.md (benchmarks/step_time.py's
models on `--samples` synthetic 32×32×3 images) and the Fashion-MNIST pair
(keras_kd.zoo.fmnist_teacher / fmnist_student, the first `--samples`
training images); batch 128 (`--samples 4096`: 32 steps per epoch). KD at T = 4, student
loss weight 0.5, Adam(1e-3).

Configurations, each one `fit(..., epochs=1)` per round, in a shuffled order
per round, after one warm-up epoch each (tracing excluded):

- student alone + aug: `student.fit` on shuffle(N) → batch → map(the same
  `crop_flip` the cache replays, in its batched form, a fresh random seed per
  sample) → prefetch(AUTOTUNE): the same augmentation, one map per batch, as
  the cache augments it.
- student alone + aug, per-sample map: shuffle(N) → map(the stateful
  `tf.image` crop + flip of run_config, per sample) → batch → prefetch: the
  classic pipeline, for scale (a `tf.data` map call per sample costs ~35 µs).
- cached KD + aug (K views): `teachers.caching.cache(teacher, data, augment=crop_flip,
  views=K, shuffle=True)`, used exactly as docs/cache.md says (per-sample
  shuffle, the replayed view's fingerprint checked on every batch, prefetch
  inside), no extra `.cache()`.
- live KD + aug: the Distiller with the live teacher on the student's pipeline.
- student alone, no aug / cached KD, no aug: the same without augmentation.

Each epoch is timed from `on_epoch_begin` to `on_epoch_end` (`EpochClock`).
Reports medians over rounds of epoch seconds and of the per-round ratio to
"student alone + aug" (resp. "no aug"), with min–max, for wall-clock seconds
and for the process's CPU seconds (`time.process_time`, every thread: the
work an epoch costs, which other jobs on a shared machine do not inflate).
"""

import argparse
import os
import platform
import random
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import step_time  # noqa: E402  (the reference pair)

import keras_kd  # noqa: E402
from keras_kd import zoo  # noqa: E402
from keras_kd.tools.run.runner import cifar_augment  # noqa: E402
from keras_kd.teachers.caching.teacher_cache import cache, crop_flip  # noqa: E402

BATCH = 128


def reference(samples):
    rng = np.random.default_rng(1234)
    x = rng.random((samples, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, size=samples).astype(np.int32)
    return x, y, step_time.build_teacher, step_time.build_student


def fmnist(samples):
    x, y = keras_kd.datasets.load("fashion_mnist", "train", as_numpy=True)
    x, y = x[:samples].astype(np.float32), y[:samples].astype(np.int32)
    if x.ndim == 3:
        x = x[..., None]

    def student():
        keras.utils.set_random_seed(7)
        return zoo.fmnist_student()

    return x, y, zoo.fmnist_teacher, student


def configs(x, y, build_teacher, build_student, views, tail=None):
    keras.utils.set_random_seed(0)
    teacher = build_teacher()
    n = len(x)

    def live_pipeline(augment):
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=1, reshuffle_each_iteration=True)
        if augment == "per sample":
            data = data.map(cifar_augment, num_parallel_calls=tf.data.AUTOTUNE)
        data = data.batch(BATCH, drop_remainder=True)
        if augment == "per batch":
            # The cache's own crop_flip, one map per batch; a fresh seed per sample each epoch.
            def crop_flip_batch(images, labels):
                seeds = tf.random.uniform([tf.shape(labels)[0], 2], maxval=2**62, dtype=tf.int64)
                return crop_flip.batched(images, seeds), labels

            data = data.map(crop_flip_batch, num_parallel_calls=tf.data.AUTOTUNE)
        return data.prefetch(tf.data.AUTOTUNE)

    fixed = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)
    start = time.perf_counter()
    cached_aug = cache(teacher, fixed, augment=crop_flip, views=views, shuffle=True, seed=1)
    seconds_aug = time.perf_counter() - start
    start = time.perf_counter()
    cached_plain = cache(teacher, fixed, shuffle=True, seed=1)
    seconds_plain = time.perf_counter() - start
    cached_tail = None
    if tail:  # the same views, stored as the top-k + a quantized tail, decoded per batch
        cached_tail = cache(teacher, fixed, augment=crop_flip, views=views, shuffle=True, seed=1,
                            top_k=tail[0], tail_bits=tail[1])

    def student_alone(data):
        model = build_student()
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model, data

    def kd(data):
        distiller = keras_kd.Distiller(teacher, build_student(),
                                       losses=[keras_kd.losses.KD(temperature=4.0, weight=0.5)],
                                       student_loss_weight=0.5)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        return distiller, data

    table = {
        "student alone + aug": student_alone(live_pipeline("per batch")),
        f"cached KD + aug ({views} views)": kd(cached_aug),
        "live KD + aug": kd(live_pipeline("per batch")),
        "student alone + aug, per-sample map": student_alone(live_pipeline("per sample")),
        "student alone, no aug": student_alone(live_pipeline(None)),
        "cached KD, no aug": kd(cached_plain),
    }
    if cached_tail is not None:
        table[f"cached KD + aug ({views} views), top-{tail[0]} + {tail[1]}-bit tail"] = kd(cached_tail)
    return table, {"aug": seconds_aug, "plain": seconds_plain}


class EpochClock(keras.callbacks.Callback):
    """Wall and CPU seconds of the epoch itself, `on_epoch_begin` to `on_epoch_end`.

    That is the pipeline's iterator for the epoch, every step and the
    metrics, as each epoch of a longer `fit` pays them; it leaves out the
    set-up and tear-down of each one-epoch `fit` call, where this machine
    now and then stalls for ~5 s in any configuration (fit totals of 5.1,
    10.2 and 20.5 s appeared in every row, the student alone's included).
    """

    async_safe = True

    def on_epoch_begin(self, epoch, logs=None):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def measure(name, pair, rounds, views, samples, tail=None):
    x, y, build_teacher, build_student = pair(samples)
    table, cache_seconds = configs(x, y, build_teacher, build_student, views, tail)
    for model, data in table.values():
        model.fit(data, epochs=1, verbose=0)
    times = {k: [] for k in table}
    cpu = {k: [] for k in table}
    order = list(table)
    for r in range(rounds):
        random.Random(r).shuffle(order)
        for key in order:
            model, data = table[key]
            clock = EpochClock()
            model.fit(data, epochs=1, verbose=0, callbacks=[clock])
            times[key].append(clock.wall)
            cpu[key].append(clock.cpu)
        print(f"{name} round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
              flush=True)
    steps = len(x) // BATCH
    lines = [f"### {name}: {len(x)} samples, batch {BATCH}, {steps} steps per epoch", "",
             f"Caching pass: {cache_seconds['aug']:.1f} s for {views} augmented views, "
             f"{cache_seconds['plain']:.1f} s for 1 plain view (one teacher pass each, checks included).", "",
             "| configuration | wall s, median (min–max) | ratio to the student alone, same augmentation: wall, median (min–max) | CPU s, median | ratio: CPU, median (min–max) |",
             "|---|---:|---:|---:|---:|"]
    for key in times:
        base_key = "student alone, no aug" if "no aug" in key else "student alone + aug"
        cells = []
        for series in (times, cpu):
            values, base = np.array(series[key]), np.array(series[base_key])
            ratio = values / base
            cells.append((values, ratio))
        (wall, wall_ratio), (cpu_s, cpu_ratio) = cells
        lines.append(f"| {key} | {np.median(wall):.2f} ({wall.min():.2f}–{wall.max():.2f}) | "
                     f"{np.median(wall_ratio):.3f} ({wall_ratio.min():.3f}–{wall_ratio.max():.3f}) | "
                     f"{np.median(cpu_s):.2f} | {np.median(cpu_ratio):.3f} "
                     f"({cpu_ratio.min():.3f}–{cpu_ratio.max():.3f}) |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--pairs", nargs="+", default=["reference", "fmnist"])
    parser.add_argument("--samples", type=int, default=4096,
                        help="training samples per epoch (default 4096: 32 steps)")
    parser.add_argument("--tail", default=None, metavar="K,BITS",
                        help="also time the augmented cache stored as top-K + a BITS-bit tail")
    args = parser.parse_args()
    tail = tuple(int(v) for v in args.tail.split(",")) if args.tail else None
    pairs = {"reference": ("Reference pair (shared/ANCHORS.md)", reference),
             "fmnist": ("Fashion-MNIST pair (zoo.fmnist_teacher → fmnist_student)", fmnist)}
    blocks = [measure(*pairs[p], args.rounds, args.views, args.samples, tail) for p in args.pairs]
    load = os.getloadavg()
    print(f"\nCommand: `python benchmarks/cache_views.py --rounds {args.rounds} "
          f"--views {args.views} --samples {args.samples} --pairs {' '.join(args.pairs)}"
          f"{' --tail ' + args.tail if args.tail else ''}`; {os.cpu_count()} cores "
          f"(load average {load[0]:.1f} at the end: shared machine), Python "
          f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}; "
          f"{args.rounds} rounds in shuffled order, ratios taken within a round.\n")
    print("\n\n".join(blocks))


if __name__ == "__main__":
    main()
