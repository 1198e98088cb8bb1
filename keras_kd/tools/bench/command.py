"""`keras-kd bench`: every method against the scratch student, over seeds.

For one teacher/student *pair* (`PAIRS`: a dataset plus two model builders
with the stage tap names `keras_kd.zoo.recipes` expects), the benchmark

1. loads the teacher (`--teacher`, else `saved_models/<pair.teacher_file>`,
   else the one an earlier run of this output folder trained), or trains it
   and saves it in the output folder;
2. trains the scratch student and the student under each selected method
   (`keras_kd.zoo.recipes.recipe`), for every seed, with the same data order,
   optimizer and epochs;
3. measures test accuracy, parameter count, per-batch inference latency
   and the median training-step time (epoch wall time ÷ steps, first epoch
   left out because it includes tracing);
4. writes `results/<method>/<student>/seed<k>.json` as each run finishes
   (a re-run skips finished runs, so an interrupted benchmark resumes),
   TensorBoard logs under `tensorboard/`, and `report.md` + `report.png`
   (accuracy vs parameters and vs step time, error bars = std over seeds).

    keras-kd bench --pair digits-cnn --methods kd,fitnet --seeds 0,1,2 --epochs 10
    python benchmarks/methods.py --pair fmnist-cnn    # the same, as a script

Methods whose feature pairs must have the teacher's channel counts
(`keras_kd.zoo.recipes.WIDTH_MATCHED`, i.e. FSP) run on the pair's width-matched
student when the default student is thinner, and are compared with a scratch
run of that same student.
"""

import json
import os
import sys

import keras
import numpy as np

from keras_kd.tools.bench.train import (  # noqa: F401  (re-exported: scripts use bench.*)
    build_model,
    LOGIT_METHODS,
    EpochTimer,
    accuracy,
    adam_cosine,
    fit_verbose,
    logit_cache,
    student_loss,
    train_one,
    train_teacher,
)
from keras_kd.atomic import write_json
from keras_kd.tools.bench.arguments import add_arguments
from keras_kd.tools.bench.pairs import PAIRS, Pair  # noqa: F401  (scripts use bench.PAIRS)
from keras_kd.tools.bench.results import environment  # noqa: F401  (for callers)
from keras_kd.tools.config.checker import did_you_mean

SETTINGS_FILE = "bench.json"
# Settings that change the numbers: a re-run with other values would mix
# incomparable results, so it is refused.
_FIXED_SETTINGS = ("pair", "dataset", "epochs", "batch_size", "train_size",
                   "learning_rate", "temperature", "schedule", "teacher", "pipeline",
                   "validation_split")


def student_for(pair, method):
    """The student name `method` trains on this pair."""
    from keras_kd.zoo import recipes as methods

    if method in methods.WIDTH_MATCHED and pair.matched_student:
        return pair.matched_student
    return pair.student


def plan_runs(pair, methods_, seeds):
    """`(method, student, seed)` for every run, scratch baselines first."""
    students = []
    for method in methods_:
        name = student_for(pair, method)
        if name not in students:
            students.append(name)
    runs = [("scratch", s, seed) for s in students for seed in seeds]
    runs += [(m, student_for(pair, m), seed) for m in methods_ if m != "scratch"
             for seed in seeds]
    return runs


def result_path(output_dir, method, student, seed):
    return os.path.join(output_dir, "results", method, student, f"seed{seed}.json")


def _check_settings(output_dir, settings):
    path = os.path.join(output_dir, SETTINGS_FILE)
    if os.path.exists(path):
        with open(path) as handle:
            earlier = json.load(handle)
        changed = [k for k in _FIXED_SETTINGS if earlier.get(k) != settings.get(k)]
        if changed:
            details = ", ".join(f"{k}: {earlier.get(k)!r} → {settings.get(k)!r}" for k in changed)
            raise ValueError(
                f"'{output_dir}' holds results of a benchmark with other settings "
                f"({details}); results with different settings cannot be mixed. "
                "Use another --output-dir, or the earlier settings to resume."
            )
    write_json(path, settings, indent=1)


def _subset(x, y, size, seed=0):
    """A fixed, class-stratified subset of the training set (same for every run)."""
    if size is None or size >= len(y):
        return x, y
    keep = subset_indices(y, size, seed)
    return x[keep], y[keep]


def subset_indices(y, size, seed=0):
    """The sorted indices `_subset` keeps: `size` samples, stratified by class."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    classes = np.unique(y)
    per_class = {c: int(round(size * np.mean(y == c))) for c in classes}
    keep = np.concatenate([order[y[order] == c][: per_class[c]] for c in classes])
    keep.sort()
    return keep


def load_data(pair, train_size=None, data_dir=None):
    from keras_kd import datasets

    train = datasets.load(pair.dataset, "train", as_numpy=True, data_dir=data_dir)
    test = datasets.load(pair.dataset, "test", as_numpy=True, data_dir=data_dir)
    return _subset(*train, train_size), test


def find_teacher(pair, output_dir, teacher_path=None):
    """The teacher file to load, or None when it must be trained."""
    if teacher_path is not None:
        if not os.path.exists(teacher_path):
            raise FileNotFoundError(f"--teacher '{teacher_path}' does not exist.")
        return teacher_path
    from keras_kd.tools.demo import find_saved_model

    shipped = find_saved_model(pair.teacher_file)
    if shipped is not None:
        return shipped
    trained = os.path.join(output_dir, "teacher.keras")
    return trained if os.path.exists(trained) else None


def run(
    pair="digits-cnn",
    methods_=None,
    seeds=(0, 1, 2),
    epochs=None,
    teacher_epochs=None,
    batch_size=None,
    train_size="default",
    learning_rate=1e-3,
    temperature=4.0,
    output_dir=None,
    teacher_path=None,
    data_dir=None,
    verbose=1,
    data=None,
    cache_teacher=True,
    validation_split=None,
):
    """Runs (or resumes) a benchmark and writes its report; returns the rows.

    `cache_teacher` computes the teacher's logits on the training subset
    once and serves them to the logit methods (`LOGIT_METHODS`); the
    feature methods always run the teacher live.

    `data` (`((x_train, y_train), (x_test, y_test))`) replaces the pair's
    dataset, for tests and for users with their own arrays.

    `validation_split` (a fraction) carves a validation set out of the
    students' training subset (`keras_kd.datasets.validation_split`,
    stratified, split seed 0: the same for every method and seed); the
    students train on the rest, their validation metrics are logged every
    epoch (TensorBoard, `val_accuracy` in each result row), and the test
    accuracy is measured as without it.
    """
    from keras_kd.zoo import recipes as methods

    if pair not in PAIRS:
        raise ValueError(f"Unknown pair '{pair}'; known: {', '.join(PAIRS)}.")
    spec = PAIRS[pair]
    methods_ = list(methods_ or ["scratch"] + [m for m in methods.METHODS if m != "scratch"])
    unknown = [m for m in methods_ if m not in methods.METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}"
                         + did_you_mean(unknown[0], methods.METHODS)
                         + f" (known: {', '.join(methods.METHODS)}).")
    if "scratch" not in methods_:
        methods_.insert(0, "scratch")
    if spec.teacher.startswith("hinton"):
        feature = [m for m in methods_ if m not in ("scratch",) + LOGIT_METHODS]
        if feature:
            raise ValueError(
                f"Pair '{pair}' has MLP models without conv stages; feature methods "
                f"{feature} need a CNN pair. Use --methods {','.join(LOGIT_METHODS)}."
            )
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("Give at least one seed.")
    settings = {
        "pair": pair,
        "dataset": spec.dataset if data is None else "user arrays",
        "epochs": int(epochs or spec.epochs),
        "teacher_epochs": int(teacher_epochs or spec.teacher_epochs),
        "batch_size": int(batch_size or spec.batch_size),
        "train_size": spec.train_size if train_size == "default" else train_size,
        "learning_rate": float(learning_rate),
        "temperature": float(temperature),
        "schedule": "adam-cosine",
        "pipeline": "tf.data per-sample shuffle seeded by the run's seed",
        "teacher": teacher_path,
        "validation_split": None if validation_split is None else float(validation_split),
    }
    if settings["epochs"] < 1:
        raise ValueError(f"epochs must be >= 1, got {settings['epochs']}.")
    full = load_data(spec, None, data_dir) if data is None else data
    # The teacher trains on the whole training set; the students on the subset.
    data = (_subset(*full[0], settings["train_size"]), full[1])
    validation = None
    if validation_split is not None:  # a bad fraction fails before anything is written
        from keras_kd import datasets

        train_part, validation = datasets.validation_split(
            *data[0], validation_split, seed=0, name="--validation-split")
        data = (train_part, data[1])
    output_dir = output_dir or os.path.join("bench_runs", pair)
    os.makedirs(output_dir, exist_ok=True)
    _check_settings(output_dir, settings)
    (x_train, y_train), (x_test, y_test) = data
    held = "" if validation is None else f" (+ {len(validation[1])} validation, carved from it)"
    _say(verbose, f"{pair}: {spec.description}\n"
         f"data: {settings['dataset']}, {len(y_train)} train{held} / {len(y_test)} test")

    found = find_teacher(spec, output_dir, teacher_path)
    if found is None:
        _say(verbose, f"No saved teacher '{spec.teacher_file}': training it "
             f"({settings['teacher_epochs']} epochs).")
        found = train_teacher(spec, full, output_dir, settings["teacher_epochs"],
                              settings["learning_rate"], verbose)
    teacher = keras.saving.load_model(found)
    teacher_row = {
        "method": "teacher", "student": spec.teacher, "file": os.path.relpath(found),
        "accuracy": accuracy(teacher, x_test, y_test),
        "params": int(teacher.count_params()),
        "latency_ms": _latency(teacher, x_test),
    }
    _say(verbose, f"teacher {found}: {teacher_row['accuracy'] * 100:.2f}% test accuracy")

    runs = plan_runs(spec, methods_, seeds)
    cache = None
    pending = [r for r in runs if not os.path.exists(result_path(output_dir, *r))]
    if cache_teacher and any(method in LOGIT_METHODS for method, _, _ in pending):
        cache = logit_cache(teacher, x_train, y_train)
        _say(verbose, f"teacher logits cached for the logit methods: {cache.num_samples} "
             f"samples, {cache.nbytes / 2**20:.1f} MiB, {cache.seconds:.1f} s")
    progress = keras.utils.Progbar(len(runs), unit_name="run") if verbose else None
    rows = []
    for index, (method, student_name, seed) in enumerate(runs, start=1):
        path = result_path(output_dir, method, student_name, seed)
        if os.path.exists(path):
            with open(path) as handle:
                row = json.load(handle)
            status = "done earlier"
        else:
            _say(verbose, f"\n[{index}/{len(runs)}] {method} · {student_name} · seed {seed}")
            row = train_one(method, student_name, seed, teacher, spec, data, settings,
                            output_dir, verbose, cache=cache, validation=validation)
            write_json(path, row, indent=1)
            status = f"{row['train_seconds']:.0f} s"
        rows.append(row)
        if progress is not None:
            _say(verbose, f"{method} · {student_name} · seed {seed}: "
                 f"{row['accuracy'] * 100:.2f}% ({status})")
            progress.update(index)

    from keras_kd.tools.bench import report as bench_report

    report = bench_report.write(output_dir, settings, teacher_row, rows, spec, command=_command())
    _say(verbose, "\n" + report["table"])
    _say(verbose, f"\nreport: {report['markdown']}\nplot:   {report['plot']}\n"
         f"TensorBoard: tensorboard --logdir {os.path.join(output_dir, 'tensorboard')}")
    return {"teacher": teacher_row, "rows": rows, **report}


def _latency(model, x):
    from keras_kd.tools.timing import latency_ms

    return latency_ms(model, x[:256])


def _say(verbose, text):
    if verbose:
        print(text, flush=True)


def _command():
    argv = sys.argv[:]
    if not argv:
        return ""
    if argv[0].endswith(("keras-kd", "cli.py")):
        argv[0] = "keras-kd"
    elif argv[0].endswith(".py"):
        argv[0] = "python " + os.path.relpath(argv[0])
    return " ".join(argv)


def from_args(args):
    train_size = "default" if args.train_size is None else (args.train_size or None)
    return run(
        pair=args.pair,
        methods_=None if args.methods is None
        else [m.strip() for m in args.methods.split(",") if m.strip()],
        seeds=[s for s in args.seeds.split(",") if s.strip()],
        epochs=args.epochs,
        teacher_epochs=args.teacher_epochs,
        batch_size=args.batch_size,
        train_size=train_size,
        learning_rate=args.learning_rate,
        temperature=args.temperature,
        output_dir=args.output_dir,
        teacher_path=args.teacher,
        data_dir=args.data_dir,
        verbose=0 if args.quiet else 1,
        cache_teacher=not args.live_teacher,
        validation_split=args.validation_split,
    )


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="benchmarks/methods.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    from_args(parser.parse_args(argv))
    return 0
