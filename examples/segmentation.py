"""Dense distillation on a real-image segmentation task built from Fashion-MNIST.

    nice -n 10 python examples/segmentation.py --seeds 0,1,2 --no-xla \\
        --out results/segmentation/fashion_mosaics.json
    python examples/segmentation.py --quick --out /tmp/seg_quick.json

The task: each image is a 2x2 mosaic (56x56) of four Fashion-MNIST items; each
pixel is labelled with its item's class (0-9) where the item's pixel is
brighter than 0.25, background (class 10) where it is darker than 0.05
(`mosaics(threshold=..., background=...)`), and ignored (-1) in between: the faint rims of the
items, left out of the losses and the metrics as the "void" border of
Pascal VOC is. Naming a pixel's class takes the item's whole shape, so the
networks need context beyond the pixel.

- teacher: a small U-Net (stride-2 stem, 2 poolings, 16-32-64 channels),
  trained once (--teacher-seed) and saved to / reloaded from --teacher-path;
- student: a smaller U-Net (stride-2 stem, 2 poolings, 8-16-32 channels);
- scratch: per-pixel cross-entropy over the labelled pixels only
  (-1 pixels masked by the Distiller);
- KD: the same + per-pixel `KD(T)` (T²·KL per pixel, averaged over each
  image's labelled pixels);
- CWD: the same + `CWD(T)` on the dense logits (Shu et al. 2021: per class
  channel, a softmax over the 56x56 positions, KL × T² / channels);
- within a seed every student starts from the same weights and sees the
  same batch order. Adam, cosine decay to 0;
- the teacher's logits on the training mosaics are computed once and fed
  with each batch, `(x, y, {"logits": t})`, so the Distiller does not run
  the teacher (the images are not augmented, so they never change).

Reports pixel accuracy and mIoU (over the 11 classes, labelled pixels only)
on mosaics of the test split, mean ± std over the seeds, and the per-seed
paired differences vs scratch. Results are saved to --out (JSON) after each
run; an interrupted sweep resumes. The run of the README ("Your own models") is kept in
docs/segmentation/fashion_mosaics.json.
"""

import argparse
import json
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf

import keras_kd
from keras_kd import datasets

CLASSES = 11  # 10 items + background
BACKGROUND = 10
IGNORE = -1
TILE = 28
SIZE = 2 * TILE
METHODS = ("scratch", "kd", "cwd")


def mosaics(images, labels, count, seed, threshold=0.25, background=0.05):
    """`count` 2x2 mosaics of random items and their per-pixel labels.

    Returns images (count, 56, 56, 1) float32 in [0, 1] and labels
    (count, 56, 56) int32: the item's class where its pixel > threshold,
    BACKGROUND where < background, IGNORE in between.
    """
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(labels), size=(count, 4))
    x = np.zeros((count, SIZE, SIZE, 1), "float32")
    y = np.zeros((count, SIZE, SIZE), "int32")
    for k, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        tiles = images[picks[:, k], :, :, 0]
        tile_labels = np.full(tiles.shape, IGNORE, "int32")
        tile_labels[tiles > threshold] = np.repeat(
            labels[picks[:, k]], TILE * TILE
        ).reshape(tiles.shape)[tiles > threshold]
        tile_labels[tiles < background] = BACKGROUND
        rows, cols = slice(r * TILE, (r + 1) * TILE), slice(c * TILE, (c + 1) * TILE)
        x[:, rows, cols, 0] = tiles
        y[:, rows, cols] = tile_labels
    return x, y


def load_task(train_count, test_count, seed=0):
    """Mosaics of the train split (train) and of the test split (test)."""
    train_images, train_labels = datasets.load("fashion_mnist", "train", as_numpy=True)
    test_images, test_labels = datasets.load("fashion_mnist", "test", as_numpy=True)
    train = mosaics(train_images, train_labels, train_count, seed)
    test = mosaics(test_images, test_labels, test_count, seed + 1)
    return train, test


def _conv(x, filters, name):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def unet(widths, name, seed=0):
    """A U-Net at half resolution: a stride-2 3x3 conv stem (56 -> 28), then
    len(widths) - 1 poolings with one 3x3 conv block per level each way and
    skip connections, a 1x1 conv to the CLASSES logits, and a bilinear 2x
    upsampling of the logits back to 56x56 (segmentation networks commonly
    predict at a reduced stride and upsample the logits)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    skips = []
    for level, filters in enumerate(widths[:-1]):
        x = _conv(x, filters, f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(name=f"pool{level}")(x)
    x = _conv(x, widths[-1], "bottom")
    for level in reversed(range(len(widths) - 1)):
        x = keras.layers.UpSampling2D(name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv(x, widths[level], f"dec{level}")
    x = keras.layers.Conv2D(CLASSES, 1, name="logits_half")(x)
    logits = keras.layers.UpSampling2D(interpolation="bilinear", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


TEACHER_WIDTHS = (16, 32, 64)
STUDENT_WIDTHS = (8, 16, 32)


def _optimizer(steps, learning_rate):
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, max(steps, 1))
    return keras.optimizers.Adam(schedule)


def _batches(x, y, batch_size, seed, teacher_logits=None):
    """The same shuffled batch order for every model of a seed; with
    `teacher_logits`, batches are (x, y, {"logits": t}) and the Distiller
    reads the cached teacher logits instead of running the teacher."""
    parts = (x, y) if teacher_logits is None else (x, y, {"logits": teacher_logits})
    data = tf.data.Dataset.from_tensor_slices(parts)
    data = data.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=True).prefetch(2)


def segmentation_scores(model, x, y, batch_size=256):
    """Pixel accuracy and mIoU over the labelled pixels (label >= 0)."""
    predicted = np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=-1)
    labelled = y >= 0
    truth, guess = y[labelled], predicted[labelled]
    confusion = np.bincount(truth * CLASSES + guess, minlength=CLASSES * CLASSES)
    confusion = confusion.reshape(CLASSES, CLASSES).astype("float64")
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    present = union > 0
    return {
        "pixel_accuracy": float(hits.sum() / confusion.sum()),
        "miou": float(np.mean(hits[present] / union[present])),
    }


def train_teacher(train, epochs, batch_size, seed, learning_rate=3e-3, jit_compile="auto"):
    x, y = train
    teacher = unet(TEACHER_WIDTHS, "seg_teacher", seed)
    steps = epochs * (len(y) // batch_size)
    teacher.compile(
        optimizer=_optimizer(steps, learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE),
        jit_compile=jit_compile,
    )
    teacher.fit(_batches(x, y, batch_size, seed), epochs=epochs, verbose=0)
    return teacher


def get_teacher(path, train, epochs, batch_size, seed, jit_compile="auto"):
    """Loads the teacher from `path`, or trains it and saves it there (never
    over an existing file)."""
    if path and os.path.exists(path):
        return keras.saving.load_model(path), False
    teacher = train_teacher(train, epochs, batch_size, seed, jit_compile=jit_compile)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        teacher.save(path)
    return teacher, True


def make_terms(method, kd_temperature, kd_weight, cwd_temperature, cwd_weight):
    if method == "scratch":
        return []
    if method == "kd":
        return [keras_kd.losses.KD(temperature=kd_temperature, weight=kd_weight)]
    if method == "cwd":
        return [keras_kd.losses.CWD(temperature=cwd_temperature, weight=cwd_weight)]
    raise ValueError(f"Unknown method {method!r}; use one of {METHODS}.")


def train_student(method, teacher, train, test, args, seed, teacher_logits=None):
    x, y = train
    student = unet(STUDENT_WIDTHS, "seg_student", seed)
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=make_terms(method, args.kd_temperature, args.kd_weight,
                          args.cwd_temperature, args.cwd_weight),
    )
    steps = args.epochs * (len(y) // args.batch_size)
    distiller.compile(
        optimizer=_optimizer(steps, args.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False if args.no_xla else "auto",
    )
    batches = _batches(x, y, args.batch_size, seed, teacher_logits)
    distiller.fit(batches, epochs=args.epochs, verbose=0)
    return segmentation_scores(student, *test)


def summarize(results, methods=METHODS):
    """Markdown table: mean ± std per method and per-seed paired differences
    vs scratch, for pixel accuracy and mIoU (in %)."""
    lines = [
        "| method | pixel accuracy % | mIoU % | Δ pixel acc. vs scratch (per seed) | Δ mIoU vs scratch (per seed) |",
        "|---|---|---|---|---|",
    ]
    scratch = results.get("scratch", {})
    for method in methods:
        runs = results.get(method, {})
        if not runs:
            continue
        seeds = sorted(runs, key=int)
        row = [method]
        for metric in ("pixel_accuracy", "miou"):
            values = np.array([runs[s][metric] for s in seeds]) * 100
            row.append(f"{values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}")
        for metric in ("pixel_accuracy", "miou"):
            paired = [s for s in seeds if s in scratch]
            if method == "scratch" or not paired:
                row.append("—")
                continue
            diffs = [(runs[s][metric] - scratch[s][metric]) * 100 for s in paired]
            row.append(
                f"{np.mean(diffs):+.2f} ({', '.join(f'{d:+.2f}' for d in diffs)})"
            )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _save(path, payload):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--train-mosaics", type=int, default=1000)
    parser.add_argument("--test-mosaics", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--teacher-epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--kd-temperature", type=float, default=1.0)
    parser.add_argument("--kd-weight", type=float, default=1.0)
    parser.add_argument("--cwd-temperature", type=float, default=4.0)
    parser.add_argument("--cwd-weight", type=float, default=3.0)
    parser.add_argument("--teacher-seed", type=int, default=1000)
    parser.add_argument("--teacher-path", default="saved_models/fashion_seg_teacher.keras")
    parser.add_argument("--no-xla", action="store_true", help="jit_compile=False (faster to start)")
    parser.add_argument("--out", default="results/segmentation/fashion_mosaics.json")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 1 epoch, no teacher file (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_mosaics, args.test_mosaics = 64, 32
        args.epochs = args.teacher_epochs = 1
        args.batch_size = 32
        args.teacher_path = None
        args.no_xla = True
    seeds = [s.strip() for s in args.seeds.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    started = time.time()
    train, test = load_task(args.train_mosaics, args.test_mosaics)
    teacher, trained = get_teacher(
        args.teacher_path, train, args.teacher_epochs, args.batch_size, args.teacher_seed,
        jit_compile=False if args.no_xla else "auto",
    )
    payload = {"config": vars(args), "results": {}}
    if args.out and os.path.exists(args.out):
        with open(args.out) as handle:
            previous = json.load(handle)
        payload["results"] = previous.get("results", {})
    payload["teacher"] = segmentation_scores(teacher, *test)
    payload["teacher"]["params"] = int(teacher.count_params())
    payload["teacher"]["trained_now"] = trained
    payload["student_params"] = int(unet(STUDENT_WIDTHS, "count").count_params())
    print(f"teacher: {payload['teacher']}  ({time.time() - started:.0f}s)", flush=True)
    # The teacher is frozen and the inputs are not augmented: its logits are
    # computed once (float16 halves the memory) and reused by every run.
    teacher_logits = teacher.predict(train[0], batch_size=256, verbose=0).astype("float16")
    for seed in seeds:
        for method in methods:
            if seed in payload["results"].get(method, {}):
                continue
            run_started = time.time()
            scores = train_student(method, teacher, train, test, args, int(seed), teacher_logits)
            scores["seconds"] = round(time.time() - run_started, 1)
            payload["results"].setdefault(method, {})[seed] = scores
            _save(args.out, payload)
            print(f"seed {seed} {method}: {scores}", flush=True)
    payload["seconds"] = round(time.time() - started, 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    payload["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    _save(args.out, payload)
    print(summarize(payload["results"], methods))
    print(f"total {payload['seconds']:.0f}s wall, {payload['cpu_seconds']:.0f}s CPU")
    return payload


if __name__ == "__main__":
    main()
