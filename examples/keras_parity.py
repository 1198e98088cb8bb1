"""Plain KD: keras-kd against `keras.distillation`, paired per seed.

    nice -n 10 python examples/keras_parity.py --seeds 0,1,2,3,4 \\
        --out results/parity/fashion_mnist.json
    python examples/keras_parity.py --quick --out /tmp/parity_quick.json

Setting (issue 10, item 7): Fashion-MNIST (`keras_kd.datasets.load`), the
student is Hinton et al.'s MLP 2×800 (`keras_kd.zoo.hinton_student`), the
teacher is the shipped Fashion-MNIST CNN (`saved_models/
fashion_mnist_teacher.keras`, `zoo.fmnist_teacher`, trained by `keras-kd
bench --pair fmnist-cnn`); T = 4, hard-label weight 0.1, Adam 1e-3,
batch 128, 10 epochs. Three students per seed:

- `keras_kd w=1.0`: `Distiller(losses=[KD(T=4, weight=1.0)],
  student_loss_weight=0.1)`: 0.1·CE + 1.0·T²·KL (independent weights, the
  keras-kd default weight of KD);
- `keras_kd w=0.9`: the same with `KD(weight=0.9)`: 0.1·CE + 0.9·T²·KL;
- `keras.distillation`: `Distiller(distillation_losses=LogitsDistillation(
  temperature=4, loss=keras.losses.KLDivergence()), student_loss_weight=0.1)`,
  i.e. α·CE + (1−α)·T²·KL with α = 0.1. The `KLDivergence` *instance* is
  needed: with the default string `"kl_divergence"` LogitsDistillation
  applies the KL to the raw logits (no softmax, no T²).

Identical initialisation and data order: within a seed, the student's
initial weights are drawn once (`keras.utils.set_random_seed(seed)`) and
copied into every row, and each epoch's order is a numpy permutation drawn
from the seed, the same for every row. The teacher's logits are computed
once (inference mode) and fed to both libraries: to keras-kd as cached
logits (`(x, y, {"logits": t})`), to `keras.distillation` through a
teacher model that returns the logits given beside the image (its student
is the same MLP behind a two-input wrapper that ignores the logits). Both
thus see exactly the same numbers. The test error count (per 10,000) of
each student is saved to --out after every run; a re-run resumes.
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import keras_kd
from keras_kd import datasets, zoo
from keras_kd.taps.views import LOGITS

TEMPERATURE = 4.0
HARD_WEIGHT = 0.1
LEARNING_RATE = 1e-3
ROWS = ("keras_kd w=1.0", "keras_kd w=0.9", "keras.distillation")
TEACHER_FILE = "saved_models/fashion_mnist_teacher.keras"
QUICK = {"seeds": "0,1", "epochs": 1, "train_size": 2000, "test_size": 1000}


def load_data(train_size=None, test_size=None):
    x, y = datasets.load("fashion_mnist", "train", as_numpy=True)
    x_test, y_test = datasets.load("fashion_mnist", "test", as_numpy=True)
    return {"x": x[:train_size], "y": y[:train_size].astype("int64"),
            "x_test": x_test[:test_size], "y_test": y_test[:test_size].astype("int64")}


def predict_logits(model, x, batch_size=1000):
    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def epoch_orders(seed, examples, epochs):
    """One permutation per epoch, drawn from `seed`: the same for every row."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(examples) for _ in range(epochs)]


def _batches(parts, order, batch_size):
    """A fixed-order tf.data pipeline over `parts` (a tuple of arrays) in `order`."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(tuple(p[order] for p in parts)).batch(batch_size)


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def keras_kd_distiller(teacher, student, kd_weight):
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.KD(temperature=TEMPERATURE, weight=kd_weight)],
        student_loss_weight=HARD_WEIGHT)
    distiller.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=_loss())
    return distiller


def keras_distiller(student, num_classes):
    """keras.distillation's Distiller on cached logits: (image, logits) -> logits."""
    image = keras.Input(student.input_shape[1:], name="image")
    given = keras.Input((num_classes,), name="teacher_logits")
    teacher = keras.Model([image, given], keras.layers.Identity()(given), name="cached_teacher")
    wrapped = keras.Model([image, given], student(image), name="student_wrapper")
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=wrapped,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=TEMPERATURE, loss=keras.losses.KLDivergence()),
        student_loss_weight=HARD_WEIGHT)
    distiller.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=_loss())
    return distiller


def build_row(row, teacher, student, num_classes):
    if row == "keras.distillation":
        return keras_distiller(student, num_classes)
    return keras_kd_distiller(teacher, student, 1.0 if row.endswith("1.0") else 0.9)


def train_row(row, teacher, initial, data, logits, orders, batch_size):
    """Trains a student with `initial` weights; returns it."""
    student = zoo.hinton_student(data["x"].shape[1:], logits.shape[-1])
    student.set_weights(initial)
    model = build_row(row, teacher, student, logits.shape[-1])
    for order in orders:
        if row == "keras.distillation":
            pipeline = _batches((data["x"], logits, data["y"]), order, batch_size).map(
                lambda x, t, y: ((x, t), y))
        else:
            pipeline = _batches((data["x"], data["y"], logits), order, batch_size).map(
                lambda x, y, t: (x, y, {LOGITS: t}))
        model.fit(pipeline, epochs=1, verbose=0)
    return student


def test_errors(student, data):
    wrong = np.argmax(predict_logits(student, data["x_test"]), -1) != data["y_test"]
    return int(wrong.sum())


def table(results, seeds):
    """Markdown: errors per seed, the paired differences against keras.distillation."""
    lines = ["| seed | " + " | ".join(ROWS) + " | w=1.0 − keras | w=0.9 − keras |",
             "|---|" + "---|" * (len(ROWS) + 2)]
    diffs = {row: [] for row in ROWS[:2]}
    for seed in seeds:
        got = results.get(str(seed), {})
        if not all(row in got for row in ROWS):
            continue
        for row in ROWS[:2]:
            diffs[row].append(got[row] - got["keras.distillation"])
        lines.append(f"| {seed} | " + " | ".join(str(got[r]) for r in ROWS) + " | "
                     + " | ".join(f"{got[r] - got['keras.distillation']:+d}" for r in ROWS[:2])
                     + " |")
    summary = {}
    for row, values in diffs.items():
        if values:
            v = np.asarray(values, float)
            sd = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
            summary[row] = {"mean": float(v.mean()), "sd": sd, "n": len(v),
                            "wins": int((v < 0).sum()), "losses": int((v > 0).sum())}
    if summary:
        lines.append("")
        lines.append("| row | mean paired difference (test errors) | sd | seeds | "
                     "fewer errors / more errors than keras |")
        lines.append("|---|---|---|---|---|")
        for row, s in summary.items():
            lines.append(f"| {row} | {s['mean']:+.1f} | {s['sd']:.1f} | {s['n']} | "
                         f"{s['wins']} / {s['losses']} |")
    return "\n".join(lines), summary


def run(seeds, epochs, batch_size, out, train_size=None, test_size=None, teacher_path=None,
        log=print):
    data = load_data(train_size, test_size)
    from keras_kd.tools.demo import find_saved_model

    path = teacher_path or find_saved_model(os.path.basename(TEACHER_FILE))
    if path is None:
        raise FileNotFoundError(f"No teacher: give --teacher or put {TEACHER_FILE} in place.")
    teacher = keras.saving.load_model(path)
    logits = predict_logits(teacher, data["x"]).astype("float32")
    teacher_errors = int((np.argmax(predict_logits(teacher, data["x_test"]), -1)
                          != data["y_test"]).sum())
    results = {}
    if out and os.path.exists(out):
        with open(out) as handle:
            results = json.load(handle).get("errors", {})
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        initial = zoo.hinton_student(data["x"].shape[1:], logits.shape[-1]).get_weights()
        orders = epoch_orders(seed, len(data["y"]), epochs)
        for row in ROWS:
            if row in results.get(str(seed), {}):
                continue
            start = time.time()
            student = train_row(row, teacher, initial, data, logits, orders, batch_size)
            results.setdefault(str(seed), {})[row] = test_errors(student, data)
            log(f"seed {seed} {row}: {results[str(seed)][row]} test errors "
                f"({time.time() - start:.0f} s)")
            if out:
                os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
                with open(out, "w") as handle:
                    json.dump({"settings": {"epochs": epochs, "batch_size": batch_size,
                                            "temperature": TEMPERATURE,
                                            "hard_weight": HARD_WEIGHT, "teacher": path,
                                            "teacher_test_errors": teacher_errors,
                                            "train_size": len(data["y"]),
                                            "test_size": len(data["y_test"])},
                               "errors": results}, handle, indent=1)
    text, summary = table(results, seeds)
    log(f"teacher {path}: {teacher_errors} test errors on {len(data['y_test'])}\n{text}")
    return {"errors": results, "summary": summary, "table": text,
            "teacher_errors": teacher_errors}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--test-size", type=int, default=None)
    parser.add_argument("--teacher", default=None)
    parser.add_argument("--out", default="results/parity/fashion_mnist.json")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 1 epoch, 2000 examples")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs = QUICK["seeds"], QUICK["epochs"]
        args.train_size, args.test_size = QUICK["train_size"], QUICK["test_size"]
    run([int(s) for s in args.seeds.split(",")], args.epochs, args.batch_size, args.out,
        args.train_size, args.test_size, args.teacher)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
