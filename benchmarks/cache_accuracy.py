"""Student accuracy from an augmented teacher cache vs a live teacher vs today's plain cache.

    nice -n 10 python benchmarks/cache_accuracy.py [--seeds 0 1 2] [--epochs 10] [--train 10000]

Fashion-MNIST, the trained saved_models/fashion_mnist_teacher.keras, the
`zoo.fmnist_student`; the first `--train` training images, the full test
set. KD(T=4, weight 0.9) + 0.1 × cross-entropy, Adam(1e-3), batch 128.
Per seed (student initialisation and shuffle order), three runs:

- cached + aug: `teachers.caching.cache(teacher, data, augment=crop_flip, views=K,
  shuffle=True)`: K stored crop+flip views (pad 4) per image;
- live + aug: the live teacher on shuffle → map(crop_flip with a fresh seed
  per sample and epoch) → batch: teacher and student see the same view;
- cached, no aug: the cache without augmentation (what the library offered
  before, per batch; now per sample).

Reports test accuracy per seed, the paired differences and their mean.
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import zoo  # noqa: E402
from keras_kd.teachers.caching.teacher_cache import build, crop_flip  # noqa: E402

BATCH = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--views", type=int, default=4)
    args = parser.parse_args()
    x, y = keras_kd.datasets.load("fashion_mnist", "train", as_numpy=True)
    xt, yt = keras_kd.datasets.load("fashion_mnist", "test", as_numpy=True)
    x, y = x[:args.train].astype(np.float32), y[:args.train].astype(np.int32)
    xt, yt = xt.astype(np.float32), yt.astype(np.int32)
    if x.ndim == 3:
        x, xt = x[..., None], xt[..., None]
    teacher = keras.saving.load_model(os.path.join(REPO, "saved_models", "fashion_mnist_teacher.keras"))
    teacher_acc = float(np.mean(np.argmax(teacher.predict(xt, batch_size=512, verbose=0), 1) == yt))
    fixed = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    start = time.perf_counter()
    aug_cache = build(teacher, fixed, augment=crop_flip, views=args.views)
    aug_seconds = time.perf_counter() - start
    plain_cache = build(teacher, fixed)

    def live(seed):
        data = tf.data.Dataset.from_tensor_slices((x, y)).enumerate().shuffle(
            len(x), seed=seed, reshuffle_each_iteration=True)
        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        data = draws.flat_map(lambda d: data.map(
            lambda i, e: (crop_flip(e[0], tf.stack([d, i])), e[1]), num_parallel_calls=tf.data.AUTOTUNE))
        return data.batch(BATCH).prefetch(tf.data.AUTOTUNE)

    def train(seed, data):
        keras.utils.set_random_seed(seed)
        distiller = keras_kd.Distiller(teacher, zoo.fmnist_student(),
                                       losses=[keras_kd.losses.KD(temperature=4.0, weight=0.9)],
                                       student_loss_weight=0.1)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        distiller.fit(data, epochs=args.epochs, verbose=0)
        logits = distiller.student.predict(xt, batch_size=512, verbose=0)
        return float(np.mean(np.argmax(logits, 1) == yt))

    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        for name, data in (("cached + aug", aug_cache.dataset(BATCH, shuffle=True, seed=seed)),
                           ("live + aug", live(seed)),
                           ("cached, no aug", plain_cache.dataset(BATCH, shuffle=True, seed=seed))):
            begin = time.perf_counter()
            row[name] = train(seed, data)
            row[name + " s"] = time.perf_counter() - begin
        rows.append(row)
        print(row, flush=True)
    names = ("cached + aug", "live + aug", "cached, no aug")
    print(f"\nCommand: `nice -n 10 python benchmarks/cache_accuracy.py --seeds "
          f"{' '.join(map(str, args.seeds))} --epochs {args.epochs} --train {args.train} "
          f"--views {args.views}`; Python {platform.python_version()}, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}. Teacher test accuracy {teacher_acc:.4f}; caching "
          f"{args.views} views of {len(x)} images took {aug_seconds:.0f} s.\n")
    print("| seed | " + " | ".join(names) + " | cached+aug − live+aug | cached+aug − cached no aug |")
    print("|---|" + "---:|" * (len(names) + 2))
    for r in rows:
        print(f"| {r['seed']} | " + " | ".join(f"{r[n] * 100:.2f}" for n in names) +
              f" | {(r[names[0]] - r[names[1]]) * 100:+.2f} | {(r[names[0]] - r[names[2]]) * 100:+.2f} |")
    means = {n: np.mean([r[n] for r in rows]) for n in names}
    d1 = [r[names[0]] - r[names[1]] for r in rows]
    d2 = [r[names[0]] - r[names[2]] for r in rows]
    print("| mean | " + " | ".join(f"{means[n] * 100:.2f}" for n in names) +
          f" | {np.mean(d1) * 100:+.2f} (sd {np.std(d1, ddof=1) * 100:.2f}) | "
          f"{np.mean(d2) * 100:+.2f} (sd {np.std(d2, ddof=1) * 100:.2f}) |")
    print("\nEpoch seconds, median over seeds: " + ", ".join(
        f"{n} {np.median([r[n + ' s'] for r in rows]) / args.epochs:.1f}" for n in names))


if __name__ == "__main__":
    main()
