"""Hinton et al. 2015's MNIST experiment at our scale (Fashion-MNIST, digits).

    python examples/hinton_mnist.py --dataset digits --seeds 0,1,2 --omit-class 3 \\
        --out results/hinton/digits.json
    python examples/hinton_mnist.py --dataset fashion_mnist --seeds 0,1,2 --omit-class 3 \\
        --out results/hinton/fashion_mnist.json
    python examples/hinton_mnist.py --quick --dataset digits --out /tmp/hinton_quick.json

Paper ("Distilling the Knowledge in a Neural Network", §3, MNIST test
errors): teacher 2×1200 ReLU with dropout, 67 errors; student 2×800 without
regularisation, 146 errors; the same student distilled at T = 20, 74 errors.
Omitted class: a transfer set without any 3s; the distilled net made 206
errors, 133 of them on the 1010 threes; with the bias for 3 raised by 3.5,
109 errors, 14 on 3s.

Here:

- teacher: `zoo.mlp` 2×1200 ReLU, dropout 0.5 after each hidden layer (no
  input jitter, which Hinton's teacher also had), trained once with a fixed
  seed (--teacher-seed) on the training split minus a held-out validation
  split; saved to / reloaded from --teacher-path;
- students: `zoo.mlp` 2×W for each W in --students (800 and 30), no dropout;
  within a seed every row starts from the same initial weights and sees the
  same batch order (shuffled per epoch with the seed);
- scratch: hard labels only (cross-entropy);
- distilled at T: `KD(T)` (T²·KL(soft teacher ‖ soft student), weight 1) +
  `HARD_WEIGHT` (0.1) × hard-label cross-entropy, as the paper trained on soft
  targets with a small weight on the labels;
- the teacher's logits are computed once with `keras_kd.teachers.caching.cache` on a
  fixed-order pipeline, then zipped per sample into a `(x, y, {"logits": t})`
  dataset that is shuffled per sample each epoch (the Distiller then skips
  the teacher);
- omitted class (--omit-class c): the transfer set is the training split
  without class c; a student is distilled on it at --omit-temperature (20)
  and, as a control, trained from scratch on it (labels only). The bias
  correction adds a constant b to class c's logit (its output bias) chosen
  on the held-out validation split of the TRAIN set (images only, no
  labels read) so that the fraction of validation images predicted as c
  equals c's prior (its frequency among the training labels); errors on the
  test set are reported before and after.

Adam 1e-3 throughout. Results are saved to --out (JSON) after every run,
keyed (dataset, student, method, seed); an interrupted sweep resumes and
skips the runs already there. Prints the error tables as markdown.
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import keras_kd
from keras_kd import datasets, teachers, zoo
from keras_kd.taps.views import LOGITS

HARD_WEIGHT = 0.1  # weight of the hard-label cross-entropy in the distilled rows
KD_WEIGHT = 1.0  # weight of KD(T) (T²-scaled)
LEARNING_RATE = 1e-3
TEACHER_HIDDEN = (1200, 1200)
TEACHER_DROPOUT = 0.5
VAL_FRACTION = 0.1
SPLIT_SEED = 12345  # the fixed train / validation split

# Per-dataset defaults: (student epochs, teacher epochs, batch size).
DEFAULTS = {
    "digits": (60, 60, 64),
    "fashion_mnist": (8, 60, 256),
    "mnist": (8, 60, 256),
}
QUICK = {"seeds": "0", "temperatures": "1,4", "students": "30", "epochs": 2, "teacher_epochs": 2}


# ----------------------------------------------------------------------
# Data.
def load_data(name, max_train=None):
    """`dict` of float32 images / int labels: train, val (held out of the train split), test."""
    x, y = datasets.load(name, "train", as_numpy=True)
    x_test, y_test = datasets.load(name, "test", as_numpy=True)
    # Stratified, so the validation split's class shares equal the prior the
    # omitted-class bias correction aims at (a random 144-image digits split
    # held 16% threes against a 10% prior, which pushed b the wrong way).
    rng = np.random.default_rng(SPLIT_SEED)
    val = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        val.extend(members[: int(round(VAL_FRACTION * len(members)))])
    val = np.sort(np.array(val))
    train = np.setdiff1d(np.arange(len(y)), val)
    if max_train:
        train = train[:max_train]
    return {
        "x_train": x[train], "y_train": y[train].astype("int64"),
        "x_val": x[val], "y_val": y[val].astype("int64"),
        "x_test": x_test, "y_test": y_test.astype("int64"),
        "prior": np.bincount(y.astype("int64"), minlength=10) / len(y),
    }


def pipeline(x, y, batch_size, seed, teacher_logits=None):
    """Per-sample shuffled (each epoch, with `seed`) batches of (x, y[, {"logits": t}])."""
    import tensorflow as tf

    parts = (x, y) if teacher_logits is None else (x, y, {LOGITS: teacher_logits})
    dataset = tf.data.Dataset.from_tensor_slices(parts)
    dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def teacher_logits(teacher, x, y, batch_size=1024):
    """The teacher's logits for every (x, y), in order, via `teachers.caching.cache`.

    `cache` needs a deterministic pipeline (it refuses a shuffled one and
    verifies each batch's checksum when read), so it runs on the fixed
    order; the logits are then taken out per sample and zipped into a
    per-sample-shuffled pipeline by `pipeline`.
    """
    import tensorflow as tf

    fixed = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    cached = teachers.caching.cache(teacher, fixed)
    return np.concatenate([t[LOGITS] for _, _, t in cached.as_numpy_iterator()])


# ----------------------------------------------------------------------
# Models and training.
def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build_mlp(shape, hidden, dropout=0.0, name="mlp"):
    return zoo.mlp(shape, 10, hidden=hidden, dropout=dropout, name=name)


def train_teacher(data, epochs, batch_size, seed, log=print):
    keras.utils.set_random_seed(seed)
    teacher = build_mlp(data["x_train"].shape[1:], TEACHER_HIDDEN, TEACHER_DROPOUT, "hinton_teacher")
    teacher.compile(keras.optimizers.Adam(LEARNING_RATE), _loss())
    teacher.fit(pipeline(data["x_train"], data["y_train"], batch_size, seed), epochs=epochs, verbose=0)
    return teacher


def train_student(data, width, epochs, batch_size, seed, temperature=None, logits=None, keep=None):
    """A 2×`width` student: labels only (`temperature=None`) or KD(T) + 0.1·CE.

    `keep` (boolean mask over the training split) selects the transfer set.
    """
    x, y = data["x_train"], data["y_train"]
    if keep is not None:
        x, y = x[keep], y[keep]
        logits = None if logits is None else logits[keep]
    keras.utils.set_random_seed(seed)
    student = build_mlp(x.shape[1:], (width, width), 0.0, f"student_{width}")
    if temperature is None:
        student.compile(keras.optimizers.Adam(LEARNING_RATE), _loss())
        student.fit(pipeline(x, y, batch_size, seed), epochs=epochs, verbose=0)
        return student
    # The teacher is only used for shapes/validation: the pipeline carries its logits.
    distiller = keras_kd.Distiller(
        _TEACHER["model"], student, losses=[keras_kd.losses.KD(temperature=temperature, weight=KD_WEIGHT)],
        student_loss_weight=HARD_WEIGHT)
    distiller.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=_loss())
    distiller.fit(pipeline(x, y, batch_size, seed, logits), epochs=epochs, verbose=0)
    return student


_TEACHER = {}


def predict_logits(model, x):
    return np.asarray(model.predict(x, batch_size=2048, verbose=0), dtype="float64")


# ----------------------------------------------------------------------
# Bias correction for the omitted class.
def bias_for_prior(logits, cls, prior):
    """The constant b to add to class `cls`'s logit so that `cls` is the argmax
    for a fraction `prior` of the rows of `logits` (rounded to a count).

    Row i predicts `cls` after the shift iff b > m_i = max_{k≠cls} z_ik − z_i,cls.
    With m sorted and k = round(prior · n), b is the midpoint between the k-th
    and (k+1)-th smallest margins, so exactly k rows flip or stay on `cls`
    (barring ties).
    """
    logits = np.asarray(logits, dtype="float64")
    margins = np.sort(np.delete(logits, cls, axis=1).max(axis=1) - logits[:, cls])
    k = int(round(float(prior) * len(margins)))
    if k <= 0:
        return float(margins[0] - 1.0)
    if k >= len(margins):
        return float(margins[-1] + 1.0)
    return float((margins[k - 1] + margins[k]) / 2)


def shifted(logits, cls, bias):
    out = np.array(logits, dtype="float64", copy=True)
    out[:, cls] += bias
    return out


def error_counts(logits, y, cls=None):
    wrong = np.argmax(logits, axis=-1) != y
    total = int(wrong.sum())
    return total if cls is None else (total, int(wrong[y == cls].sum()))


# ----------------------------------------------------------------------
# Results file (resumable).
def run_key(dataset, student, method, seed):
    return f"{dataset}/{student}/{method}/{seed}"


def load_results(path):
    if path and os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    return {"runs": {}}


def save_results(path, results):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(results, handle, indent=1)
    os.replace(tmp, path)


# ----------------------------------------------------------------------
def sweep(args, log=print):
    data = load_data(args.dataset, args.max_train)
    results = load_results(args.out)
    results.setdefault("runs", {})
    results["config"] = {
        "dataset": args.dataset, "epochs": args.epochs, "teacher_epochs": args.teacher_epochs,
        "batch_size": args.batch_size, "hard_weight": HARD_WEIGHT, "kd_weight": KD_WEIGHT,
        "learning_rate": LEARNING_RATE, "optimizer": "adam", "teacher_hidden": list(TEACHER_HIDDEN),
        "teacher_dropout": TEACHER_DROPOUT, "val_fraction": VAL_FRACTION,
        "n_train": int(len(data["y_train"])), "n_val": int(len(data["y_val"])),
        "n_test": int(len(data["y_test"])),
    }
    x_test, y_test = data["x_test"], data["y_test"]
    trained, skipped = [], []

    began = time.perf_counter()
    if args.teacher_path and os.path.exists(args.teacher_path):
        teacher = keras.saving.load_model(args.teacher_path)
        log(f"teacher reloaded from {args.teacher_path}")
    else:
        teacher = train_teacher(data, args.teacher_epochs, args.batch_size, args.teacher_seed, log)
        if args.teacher_path:
            os.makedirs(os.path.dirname(os.path.abspath(args.teacher_path)), exist_ok=True)
            teacher.save(args.teacher_path)
    _TEACHER["model"] = teacher
    t_logits = teacher_logits(teacher, data["x_train"], data["y_train"])
    results["teacher"] = {
        "test_errors": error_counts(predict_logits(teacher, x_test), y_test),
        "train_errors": error_counts(t_logits, data["y_train"]),
        "seconds": time.perf_counter() - began,
        "params": int(teacher.count_params()),
        "path": args.teacher_path,
    }
    log(f"teacher: {results['teacher']['test_errors']} test errors / {len(y_test)} "
        f"({results['teacher']['seconds']:.0f} s incl. caching)")
    save_results(args.out, results)

    def record(key, job):
        if key in results["runs"]:
            skipped.append(key)
            return
        start = time.perf_counter()
        entry = job()
        entry["seconds"] = time.perf_counter() - start
        results["runs"][key] = entry
        save_results(args.out, results)
        trained.append(key)
        log(f"{key}: {entry} ")

    def plain(width, seed, temperature):
        def job():
            student = train_student(data, width, args.epochs, args.batch_size, seed, temperature,
                                    None if temperature is None else t_logits)
            return {"test_errors": error_counts(predict_logits(student, x_test), y_test)}
        return job

    def omitted(width, seed, temperature):
        cls = args.omit_class
        keep = data["y_train"] != cls

        def job():
            student = train_student(data, width, args.epochs, args.batch_size, seed, temperature,
                                    None if temperature is None else t_logits, keep=keep)
            test = predict_logits(student, x_test)
            bias = bias_for_prior(predict_logits(student, data["x_val"]), cls, data["prior"][cls])
            before, before_c = error_counts(test, y_test, cls)
            after, after_c = error_counts(shifted(test, cls, bias), y_test, cls)
            return {"test_errors": before, "class_errors": before_c, "bias": bias,
                    "test_errors_corrected": after, "class_errors_corrected": after_c,
                    "class_count": int((y_test == cls).sum()), "transfer_size": int(keep.sum()),
                    "predicted_fraction_before": float((test.argmax(-1) == cls).mean())}
        return job

    for width in args.students:
        for seed in args.seeds:
            record(run_key(args.dataset, width, "scratch", seed), plain(width, seed, None))
            for temperature in args.temperatures:
                record(run_key(args.dataset, width, f"T={temperature:g}", seed), plain(width, seed, temperature))
            if args.omit_class is not None:
                c = args.omit_class
                record(run_key(args.dataset, width, f"omit{c}/scratch", seed), omitted(width, seed, None))
                record(run_key(args.dataset, width, f"omit{c}/T={args.omit_temperature:g}", seed),
                       omitted(width, seed, args.omit_temperature))
    results["sweep_seconds_this_call"] = time.perf_counter() - began
    save_results(args.out, results)
    return results, trained, skipped


# ----------------------------------------------------------------------
# Tables.
def _runs(results, dataset, width, method, seeds, field="test_errors"):
    runs = results["runs"]
    return np.array([runs[k][field] for s in seeds if (k := run_key(dataset, width, method, s)) in runs],
                    dtype="float64")


def _cell(values, n):
    if not len(values):
        return "–"
    return (f"{values.mean():.1f} ± {values.std():.1f} "
            f"({values.mean() / n * 100:.2f} ± {values.std() / n * 100:.2f} %)")


def format_tables(results, args):
    cfg = results["config"]
    n = cfg["n_test"]
    widths = args.students
    name = args.dataset
    teacher = results["teacher"]["test_errors"]
    lines = [
        f"{name}: test errors out of {n} (count, %), mean ± std (np.std) over seeds {args.seeds}. "
        f"Students 2×W MLPs, {cfg['epochs']} epochs; teacher 2×1200 dropout 0.5, "
        f"{cfg['teacher_epochs']} epochs, one seed ({args.teacher_seed}); Adam {LEARNING_RATE:g}, "
        f"batch {cfg['batch_size']}; trained on {cfg['n_train']} images ({cfg['n_val']} held out). "
        f"Distilled = KD(T) (T²·KL, weight {KD_WEIGHT:g}) + {HARD_WEIGHT:g} × hard-label CE.",
        "",
        "| model | " + " | ".join(f"2×{w} student" for w in widths) + " |",
        "|---|" + "---:|" * len(widths),
        "| teacher 2×1200 dropout | " + " | ".join(f"{teacher} ({teacher / n * 100:.2f} %)" for _ in widths) + " |",
    ]
    for method, label in [("scratch", "student, labels only")] + [
            (f"T={t:g}", f"distilled, T = {t:g}") for t in args.temperatures]:
        lines.append(f"| {label} | " + " | ".join(
            _cell(_runs(results, name, w, method, args.seeds), n) for w in widths) + " |")
    if args.omit_class is not None:
        c = args.omit_class
        first = next((results["runs"][k] for k in results["runs"] if f"/omit{c}/" in k), None)
        count = first["class_count"] if first else "?"
        lines += [
            "",
            f"Omitted class {c}: transfer set = training split without any {c} "
            f"({first['transfer_size'] if first else '?'} images); test errors overall (of {n}) and on "
            f"the {count} test images of class {c}, before / after adding b to class {c}'s logit bias "
            f"(b chosen on the {cfg['n_val']} held-out validation images so that the predicted "
            f"frequency of {c} matches its prior); mean ± std over seeds {args.seeds}.",
            "",
            f"| student | training on the transfer set | errors | errors on {c} | b | "
            f"errors after b | errors on {c} after b |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for w in widths:
            for method, label in ((f"omit{c}/scratch", "labels only"),
                                  (f"omit{c}/T={args.omit_temperature:g}",
                                   f"distilled, T = {args.omit_temperature:g}")):
                def cell(field, fmt="{:.1f} ± {:.1f}"):
                    values = _runs(results, name, w, method, args.seeds, field)
                    return fmt.format(values.mean(), values.std()) if len(values) else "–"
                lines.append(f"| 2×{w} | {label} | {cell('test_errors')} | {cell('class_errors')} | "
                             f"{cell('bias', '{:.2f} ± {:.2f}')} | {cell('test_errors_corrected')} | "
                             f"{cell('class_errors_corrected')} |")
    lines += ["", "Per seed (test errors):", "",
              "| student | method | " + " | ".join(f"seed {s}" for s in args.seeds) + " |",
              "|---|---|" + "---:|" * len(args.seeds)]
    for w in widths:
        methods = ["scratch"] + [f"T={t:g}" for t in args.temperatures]
        if args.omit_class is not None:
            methods += [f"omit{args.omit_class}/scratch", f"omit{args.omit_class}/T={args.omit_temperature:g}"]
        for method in methods:
            per = [results["runs"].get(run_key(name, w, method, s)) for s in args.seeds]
            def show(r):
                if r is None:
                    return "–"
                if "bias" in r:
                    return (f"{r['test_errors']} ({r['class_errors']} on {args.omit_class}) → "
                            f"{r['test_errors_corrected']} ({r['class_errors_corrected']}), b={r['bias']:.2f}")
                return str(r["test_errors"])
            lines.append(f"| 2×{w} | {method} | " + " | ".join(show(r) for r in per) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist", choices=sorted(DEFAULTS))
    parser.add_argument("--temperatures", default=None, help="comma list (default 1,2,4,8,20)")
    parser.add_argument("--students", default=None, help="hidden widths of 2-layer students (default 800,30)")
    parser.add_argument("--seeds", default=None, help="default 0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="student epochs (per-dataset default)")
    parser.add_argument("--teacher-epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--teacher-seed", type=int, default=0)
    parser.add_argument("--teacher-path", default=None,
                        help="reload the teacher from here if present, else train and save it "
                             "(default: next to --out, hinton_teacher_<dataset>.keras)")
    parser.add_argument("--omit-class", type=int, default=None, help="run the omitted-class experiment")
    parser.add_argument("--omit-temperature", type=float, default=20.0)
    parser.add_argument("--max-train", type=int, default=None, help="first N training images (quick runs)")
    parser.add_argument("--out", default="results/hinton/results.json")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: seed 0, T 1,4, student 30, 2 epochs (explicit flags win)")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="skip tf.config.experimental.enable_op_determinism()")
    args = parser.parse_args(argv)
    epochs, teacher_epochs, batch = DEFAULTS[args.dataset]
    quick = QUICK if args.quick else {}
    args.seeds = [int(s) for s in (args.seeds or quick.get("seeds", "0,1,2")).split(",")]
    args.temperatures = [float(t) for t in (args.temperatures or quick.get("temperatures", "1,2,4,8,20")).split(",")]
    args.students = [int(w) for w in (args.students or quick.get("students", "800,30")).split(",")]
    args.epochs = args.epochs or quick.get("epochs", epochs)
    args.teacher_epochs = args.teacher_epochs or quick.get("teacher_epochs", teacher_epochs)
    args.batch_size = args.batch_size or batch
    if args.teacher_path is None:
        args.teacher_path = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                                         f"hinton_teacher_{args.dataset}.keras")
    return args


def main(argv=None, log=None):
    """Runs the sweep; returns `{"table", "results", "trained", "skipped", "wall_seconds"}`."""
    args = parse_args(argv)
    log = log or (lambda line: print(line, flush=True))
    if not args.nondeterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    began = time.perf_counter()
    results, trained, skipped = sweep(args, log)
    wall = time.perf_counter() - began
    table = format_tables(results, args)
    log("\n" + table + f"\n\nWall time of this call: {wall / 60:.1f} min "
        f"({len(trained)} runs trained, {len(skipped)} skipped as already in {args.out}).")
    with open(os.path.splitext(args.out)[0] + ".md", "w") as handle:
        handle.write(table + "\n")
    return {"table": table, "results": results, "trained": trained, "skipped": skipped, "wall_seconds": wall}


if __name__ == "__main__":
    main()
