"""Logit distillation, teachers and regimes on the embedded digits, one student.

    python examples/logit_methods.py                       # 120 epochs, seeds 1,2,3
    python examples/logit_methods.py --epochs 40 --seeds 1

The student is always `keras_kd.zoo.digits_student()` (the demo's 64→32→10
MLP, 2,410 parameters), trained as `keras-kd demo` trains it: Adam 1e-3,
batch 32, `--epochs` epochs (120). Within a seed every row starts from the
same initial weights. Rows:

- scratch: the labels alone (the baseline);
- KD (T = 4, student loss weight 1), DKD, NKD (`keras_kd.zoo.recipes.recipe`)
  from the shipped teacher (saved_models/digits_teacher.keras);
- KD (T = 4) from `teachers.Ensemble` (mean of the soft targets at T = 4) of
  the shipped teacher and a second CNN of another architecture trained here;
- merged labels: teacher A trained here on digits 0–4 only, teacher B on
  5–9 only (the digits_teacher architecture with 5 classes); the student
  learns all 10 digits from `teachers.Merged` + `losses.MergedKD` WITHOUT
  any label, and is tested on the 10 classes;
- self-distillation: `self_distiller` + `SelfDistillation(start_epoch=E/2)`:
  labels alone for half the epochs, then KD (T = 4) from its own snapshot;
- semi-supervised (`examples/semi_supervised.py`'s `run`): 10% of the labels
  alone vs 10% of the labels + the shipped teacher on all images (KD, T = 4).

The teachers trained here use a fixed seed (--teacher-seed) and are shared by
all student seeds. Prints a markdown table (and the teachers' accuracies) and
writes it, with the per-seed numbers as JSON, to --out.
"""

import argparse
import importlib.util
import json
import os
import time

import keras
import numpy as np

import keras_kd
from keras_kd import datasets, losses, teachers, zoo
from keras_kd.zoo import recipes as methods
from keras_kd.tools.demo import find_teacher
from keras_kd.regimes.self_distillation import SelfDistillation, self_distiller

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPERATURE = 4.0
BATCH_SIZE = 32
LEARNING_RATE = 1e-3

# (key, label in the table, note). The table lists the rows in this order.
ROWS = [
    ("scratch", "scratch", "labels only"),
    ("kd", "KD", "T=4, student loss weight 1, shipped teacher"),
    ("dkd", "DKD", "the recipe for {epochs} epochs: {dkd}, shipped teacher"),
    ("nkd", "NKD", "T=1, gamma=1.5, shipped teacher"),
    ("ensemble", "KD from a 2-teacher Ensemble", "mean of soft targets at T=4: shipped + {second}"),
    ("merged", "Merged 0–4 + 5–9 teachers (MergedKD)", "NO labels; T=4; 10-class test"),
    ("self", "self-distillation", "labels for {start} epochs, then + KD T=4 from that snapshot"),
    ("semi_alone", "{pct}% labels alone", "same steps as the row below"),
    ("semi_teacher", "{pct}% labels + shipped teacher", "KD T=4 on all images; {delta} vs {pct}% alone"),
]


# ----------------------------------------------------------------------
# Data and helpers.
def load_data(max_train=None):
    """`((x_train, y_train), (x_test, y_test))`; `max_train` keeps the first N."""
    x, y = datasets.load("digits", "train", as_numpy=True)
    if max_train:
        x, y = x[:max_train], y[:max_train]
    return (x, y), datasets.load("digits", "test", as_numpy=True)


def accuracy(model, x, y):
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    return float((logits.argmax(-1) == y).mean())


def _compile(model, labels=True):
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True) if labels else None,
        metrics=["accuracy"] if labels else None,
    )
    return model


def load_semi_supervised():
    """`examples/semi_supervised.py` as a module (its `run` is reused)."""
    path = os.path.join(HERE, "semi_supervised.py")
    spec = importlib.util.spec_from_file_location("semi_supervised_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------
# Teachers trained by this script (fixed seed), as the shipped one was
# (keras_kd.tools.demo.train_teacher: Adam 1e-3, batch 64, 30 epochs).
def _train_teacher(build, x, y, epochs, seed, batch_size=64):
    keras.utils.set_random_seed(seed)
    model = build()
    _compile(model)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def second_teacher(data, epochs=30, seed=0):
    """A CNN of another architecture than the shipped one: one conv per stage,
    24/48/96 channels, pooled after stage 1, a 64-unit hidden layer."""
    (x, y), _ = data
    return _train_teacher(
        lambda: zoo.cnn((8, 8, 1), 10, widths=(24, 48, 96), convs_per_stage=1, pool_after=(1,),
                        dense=64, dropout=0.3, name="cnn_b"),
        x, y, epochs, seed)


def subset_teachers(data, epochs=30, seed=0):
    """Teacher A on digits 0–4 (its logits: 0..4), teacher B on 5–9 (5..9).

    Batch 32: each sees half the images, so this keeps the shipped teacher's
    ~23 steps per epoch. At batch 64 (half the steps) the BatchNormalization
    moving statistics had not caught up after 30 epochs: teacher A scored
    41% on its digits at inference (training=False), 100% with batch
    statistics.
    """
    (x, y), _ = data
    found = []
    for name, classes in (("teacher_0_4", range(0, 5)), ("teacher_5_9", range(5, 10))):
        keep = np.isin(y, list(classes))

        def build(name=name):
            model = zoo.digits_teacher(num_classes=5)
            model.name = name  # Merged addresses its teachers by name
            return model

        found.append(_train_teacher(build, x[keep], y[keep] - classes[0], epochs, seed, batch_size=32))
    return found


def teacher_report(shipped, second, ensemble, subset, merged, data):
    """Test accuracies (%) of the teachers, for the notes."""
    _, (x, y) = data
    report = {
        "shipped": accuracy(shipped, x, y),
        second.name: accuracy(second, x, y),
        "ensemble": accuracy(ensemble, x, y),
        "merged (argmax of concatenated logits, 10 classes)": accuracy(merged, x, y),
    }
    for model, first in zip(subset, (0, 5)):
        keep = (y >= first) & (y < first + 5)
        report[f"{model.name} (on its 5 digits)"] = accuracy(model, x[keep], y[keep] - first)
    return {name: value * 100 for name, value in report.items()}


# ----------------------------------------------------------------------
# Students. Each returns the trained student.
def _fit(trainer, data, epochs, labels=True, callbacks=None):
    (x, y), _ = data
    if labels:
        trainer.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, shuffle=True, callbacks=callbacks)
    else:
        trainer.fit(x, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, shuffle=True, callbacks=callbacks)


def train_scratch(data, epochs, seed):
    keras.utils.set_random_seed(seed)
    student = zoo.digits_student()
    _fit(_compile(student), data, epochs)
    return student


def train_distilled(teacher, terms, data, epochs, seed, student_loss_weight=1.0, labels=True):
    """`terms` from `teacher`; without labels the student sees images only."""
    keras.utils.set_random_seed(seed)
    student = zoo.digits_student()
    distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=student_loss_weight)
    _fit(_compile(distiller, labels), data, epochs, labels)  # DKD's warm-up is applied by fit
    return student


def train_recipe(name, teacher, data, epochs, seed):
    # TEMPERATURE is KD's; DKD and NKD keep their recipes' own T.
    temperature = None if name in methods.OWN_TEMPERATURE else TEMPERATURE
    plan = methods.recipe(name, epochs, temperature=temperature)
    return train_distilled(teacher, plan.terms, data, epochs, seed, plan.student_loss_weight)


def train_self(data, epochs, seed):
    keras.utils.set_random_seed(seed)
    student = zoo.digits_student()
    distiller = self_distiller(student, [keras_kd.losses.KD(temperature=TEMPERATURE)])
    _fit(_compile(distiller), data, epochs, callbacks=[SelfDistillation(start_epoch=self_start(epochs))])
    return student


def self_start(epochs):
    return max(1, epochs // 2)


# ----------------------------------------------------------------------
def run_all(epochs=120, seeds=(1, 2, 3), teacher_epochs=30, teacher_seed=0, fraction=0.1,
            teacher_path=None, max_train=None, log=print):
    """Trains every row for every seed. Returns `(rows, teachers_info)`."""
    data = load_data(max_train)
    _, (x_test, y_test) = data
    path = teacher_path or find_teacher()
    if path is None:
        raise FileNotFoundError("No saved_models/digits_teacher.keras; pass --teacher.")
    shipped = keras.saving.load_model(path)

    start = time.perf_counter()
    second = second_teacher(data, teacher_epochs, teacher_seed)
    ensemble = teachers.Ensemble([shipped, second], mode="mean", temperature=TEMPERATURE)
    subset = subset_teachers(data, teacher_epochs, teacher_seed)
    merged = teachers.Merged({subset[0]: [0, 1, 2, 3, 4], subset[1]: [5, 6, 7, 8, 9]})
    info = {
        "accuracy": teacher_report(shipped, second, ensemble, subset, merged, data),
        "params": {"shipped": shipped.count_params(), second.name: second.count_params(),
                   "teacher_0_4": subset[0].count_params()},
        "train_seconds": time.perf_counter() - start,
        "second_teacher": second.name,
    }
    log("teachers (test accuracy %): " + ", ".join(f"{k} {v:.2f}" for k, v in info["accuracy"].items()))

    semi = load_semi_supervised()
    kd_terms = lambda: [keras_kd.losses.KD(temperature=TEMPERATURE)]  # noqa: E731
    jobs = {
        "scratch": lambda seed: train_scratch(data, epochs, seed),
        "kd": lambda seed: train_recipe("kd", shipped, data, epochs, seed),
        "dkd": lambda seed: train_recipe("dkd", shipped, data, epochs, seed),
        "nkd": lambda seed: train_recipe("nkd", shipped, data, epochs, seed),
        "ensemble": lambda seed: train_distilled(ensemble, kd_terms(), data, epochs, seed),
        "merged": lambda seed: train_distilled(
            merged, [losses.MergedKD(temperature=TEMPERATURE)], data, epochs, seed, labels=False),
        "self": lambda seed: train_self(data, epochs, seed),
    }
    rows = []
    for seed in seeds:
        for key, job in jobs.items():
            began = time.perf_counter()
            student = job(seed)
            rows.append({"method": key, "seed": seed, "accuracy": accuracy(student, x_test, y_test),
                         "train_seconds": time.perf_counter() - began})
            log(f"seed {seed} {key:13s} {rows[-1]['accuracy'] * 100:6.2f}% ({rows[-1]['train_seconds']:.0f} s)")
        began = time.perf_counter()
        result = semi.run(shipped, fraction=fraction, epochs=epochs, seed=seed, temperature=TEMPERATURE)
        seconds = (time.perf_counter() - began) / 2
        for key, name in (("semi_alone", "labels only"), ("semi_teacher", "labels + teacher")):
            rows.append({"method": key, "seed": seed, "accuracy": result[name], "train_seconds": seconds})
            log(f"seed {seed} {key:13s} {result[name] * 100:6.2f}% (~{seconds:.0f} s)")
    return rows, info


def _values(rows, key):
    return np.array([r["accuracy"] for r in rows if r["method"] == key]) * 100


def format_table(rows, info, args):
    seeds = sorted({r["seed"] for r in rows})
    pct = f"{args.fraction * 100:g}"
    scratch = _values(rows, "scratch")
    student = zoo.digits_student()
    lines = [
        f"Digits test accuracy (%) of the same student (digits_student MLP, {student.count_params():,} "
        f"params), {args.epochs} epochs, batch {BATCH_SIZE}, Adam {LEARNING_RATE:g}, seeds {seeds}; "
        "mean ± std (np.std) over seeds. 359 test images: one image is 0.28 points.",
        "",
        "| method | accuracy | Δ vs scratch | note |",
        "|---|---:|---:|---|",
    ]
    for key, label, note in ROWS:
        values = _values(rows, key)
        if not len(values):
            continue
        delta = values.mean() - scratch.mean()
        alone = _values(rows, "semi_alone")
        dkd = methods.recipe("dkd", args.epochs).weights
        note = note.format(
            epochs=args.epochs, dkd=", ".join(f"{k}={dkd[k]:g}" for k in (
                "alpha", "beta", "temperature", "warmup_epochs")),
            second=info["second_teacher"], start=self_start(args.epochs), pct=pct,
            delta=f"{values.mean() - alone.mean():+.2f}" if len(alone) else "n/a")
        lines.append(f"| {label.format(pct=pct)} | {values.mean():.2f} ± {values.std():.2f} | "
                     f"{'' if key == 'scratch' else f'{delta:+.2f}'} | {note} |")
    lines += ["", f"Teachers (test accuracy %, trained here: {args.teacher_epochs} epochs, "
              f"seed {args.teacher_seed}):", ""]
    lines += [f"- {name}: {value:.2f}" for name, value in info["accuracy"].items()]
    lines += ["", "Per seed (%):", "", "| method | " + " | ".join(f"seed {s}" for s in seeds) + " |",
              "|---|" + "---:|" * len(seeds)]
    for key, label, _ in ROWS:
        per = {r["seed"]: r["accuracy"] * 100 for r in rows if r["method"] == key}
        if per:
            lines.append(f"| {label.format(pct=pct)} | " + " | ".join(f"{per[s]:.2f}" for s in seeds) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=120, help="student epochs (the demo's 120)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--teacher-epochs", type=int, default=30, help="epochs of the teachers trained here")
    parser.add_argument("--teacher-seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.1, help="labeled fraction, semi-supervised rows")
    parser.add_argument("--teacher", default=None, help="default: saved_models/digits_teacher.keras")
    parser.add_argument("--max-train", type=int, default=None, help="first N training images (quick runs)")
    parser.add_argument("--nondeterministic", action="store_true",
                        help="skip tf.config.experimental.enable_op_determinism()")
    parser.add_argument("--out", default="results/logit_methods")
    args = parser.parse_args(argv)
    if not args.nondeterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    seeds = [int(s) for s in args.seeds.split(",")]

    began = time.perf_counter()
    rows, info = run_all(args.epochs, seeds, args.teacher_epochs, args.teacher_seed, args.fraction,
                         args.teacher, args.max_train, log=lambda line: print(line, flush=True))
    wall = time.perf_counter() - began
    table = format_table(rows, info, args)
    print("\n" + table + f"\n\nWall time: {wall / 60:.1f} min.")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump({"args": vars(args), "rows": rows, "teachers": info, "wall_seconds": wall}, handle, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(table + "\n")
    return table


if __name__ == "__main__":
    main()
