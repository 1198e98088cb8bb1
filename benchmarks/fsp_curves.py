"""FSP's "fast optimization" claim (Yim et al. 2017), measured on Fashion-MNIST.

    PYTHONPATH=. nice -n 10 python benchmarks/fsp_curves.py --seeds 0,1,2 \\
        --epochs 12 --stage1-epochs 3 --out results/fsp_curves/fmnist.json
    PYTHONPATH=. python benchmarks/fsp_curves.py --report \\
        --out results/fsp_curves/fmnist.json --plot docs/fsp-fast-optimization.png

The `fmnist-cnn` pair of `keras-kd bench` (shipped teacher
`saved_models/fashion_mnist_teacher.keras`, zoo student `fmnist_student`,
the same fixed stratified 15,000-image training subset `bench._subset`,
batch 64, Adam 1e-3 with cosine decay, the run's seed for the student's
initialisation and for the `tf.data` shuffle). Per seed:

- `scratch`: the student trained on the labels for `--epochs` epochs.
- `fsp_init`: the same initial student, first trained on the FSP loss
  alone for `--stage1-epochs` epochs (stage 1: the `fsp` recipe's terms,
  flow matrices of stage1→stage2 and stage2→stage3, labels at weight 0,
  its own Adam 1e-3 cosine over stage 1), then trained exactly as
  `scratch` (a fresh Adam 1e-3 cosine over `--epochs` epochs, same data
  order). This is the paper's protocol: FSP as an initialisation, then
  ordinary training. The `fsp` recipe of `keras-kd bench` instead runs
  both stages inside one `fit` with one optimizer and one cosine over all
  epochs (its 15-epoch run is 3 FSP + 12 label epochs: the same split).
- `fsp_recipe` (optional, `--variants`): that bench recipe itself, one
  `fit` of `stage1 + epochs` epochs with the `Stages` callback.

The TEST accuracy is recorded after every epoch (a curve for the docs:
the test split is only read, nothing is chosen on it). `--report` prints
the table of the epochs each run needs to reach the mean final accuracy
of the scratch runs, with stage-2 epochs and total epochs (incl. stage
1), and the per-seed paired differences of the final accuracies.
Results are saved after every run; a re-run resumes.
"""

import argparse
import json
import os
import tempfile
import time

import keras
import numpy as np

from keras_kd.distiller import Distiller
from keras_kd.tools.bench import command as bench
from keras_kd.tools.bench.train import (accuracy, adam_cosine, shuffled_batches, student_loss)
from keras_kd.zoo import recipes

PAIR = "fmnist-cnn"
VARIANTS = ("scratch", "fsp_init", "fsp_recipe")


class TestCurve(keras.callbacks.Callback):
    """Test accuracy of `student` after every epoch (read only, for the plot)."""

    def __init__(self, student, x, y):
        super().__init__()
        self.student, self.x, self.y = student, x, y
        self.accuracies, self.seconds = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.accuracies.append(accuracy(self.student, self.x, self.y))


def _fit(model, train, epochs, curve, callbacks=()):
    model.fit(train, epochs=epochs, shuffle=False, verbose=2,
              callbacks=[curve, *callbacks])


def run_scratch(seed, data, epochs, batch_size, learning_rate):
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    student = bench.build_model(bench.PAIRS[PAIR].student, bench.PAIRS[PAIR].dataset)
    student.compile(optimizer=adam_cosine(learning_rate, epochs, len(y), batch_size),
                    loss=student_loss(), metrics=["accuracy"])
    curve = TestCurve(student, x_test, y_test)
    _fit(student, shuffled_batches(x, y, batch_size, seed), epochs, curve)
    return {"stage1": [], "stage2": curve.accuracies,
            "stage1_seconds": [], "stage2_seconds": curve.seconds}


def run_fsp_init(seed, data, teacher, epochs, stage1_epochs, batch_size, learning_rate):
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    pair = bench.PAIRS[PAIR]
    student = bench.build_model(pair.student, pair.dataset)
    plan = recipes.recipe("fsp", epochs, teacher=teacher, student=student,
                          init_epochs=stage1_epochs)
    # Stage 1: the recipe's FSP terms alone (labels at weight 0).
    distiller = Distiller(teacher, student, losses=plan.terms, student_loss_weight=0.0)
    distiller.compile(optimizer=adam_cosine(learning_rate, stage1_epochs, len(y), batch_size),
                      loss=student_loss(), metrics=["accuracy"])
    first = TestCurve(student, x_test, y_test)
    _fit(distiller, shuffled_batches(x, y, batch_size, seed), stage1_epochs, first)
    # Stage 2: exactly the scratch run, from the FSP-trained weights.
    student.compile(optimizer=adam_cosine(learning_rate, epochs, len(y), batch_size),
                    loss=student_loss(), metrics=["accuracy"])
    second = TestCurve(student, x_test, y_test)
    _fit(student, shuffled_batches(x, y, batch_size, seed), epochs, second)
    return {"stage1": first.accuracies, "stage2": second.accuracies,
            "stage1_seconds": first.seconds, "stage2_seconds": second.seconds,
            "weights": plan.weights}


def run_fsp_recipe(seed, data, teacher, epochs, stage1_epochs, batch_size, learning_rate):
    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    pair = bench.PAIRS[PAIR]
    student = bench.build_model(pair.student, pair.dataset)
    plan = recipes.recipe("fsp", epochs, teacher=teacher, student=student,
                          init_epochs=stage1_epochs)
    total = plan.epochs  # the initialisation stage runs ahead of the run's epochs
    model = Distiller(teacher, student, losses=plan.terms,
                      student_loss_weight=plan.student_loss_weight)
    model.compile(optimizer=adam_cosine(learning_rate, total, len(y), batch_size),
                  loss=student_loss(), metrics=["accuracy"])
    curve = TestCurve(student, x_test, y_test)
    _fit(model, shuffled_batches(x, y, batch_size, seed), total, curve, plan.callbacks)
    return {"stage1": curve.accuracies[:stage1_epochs], "stage2": curve.accuracies[stage1_epochs:],
            "stage1_seconds": curve.seconds[:stage1_epochs],
            "stage2_seconds": curve.seconds[stage1_epochs:], "weights": plan.weights}


def first_reaching(curve, threshold):
    """1-based index of the first value >= threshold, or None."""
    for index, value in enumerate(curve, start=1):
        if value >= threshold:
            return index
    return None


def report(results):
    """The markdown tables of `results` (the saved JSON's `runs`)."""
    runs = results["runs"]
    seeds = sorted({r["seed"] for r in runs.values()})
    scratch = [runs[f"scratch | {s}"] for s in seeds if f"scratch | {s}" in runs]
    threshold = float(np.mean([r["stage2"][-1] for r in scratch]))
    lines = [f"Threshold: the scratch students' mean final test accuracy, "
             f"{threshold * 100:.2f}% ({len(scratch)} seeds).", "",
             "| run | seed | final % | stage-1 epochs | stage-2 epochs to threshold | "
             "total epochs to threshold | best % (epoch) |", "|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        for seed in seeds:
            run = runs.get(f"{variant} | {seed}")
            if run is None:
                continue
            s1 = len(run["stage1"])
            reach = first_reaching(run["stage2"], threshold)
            best = int(np.argmax(run["stage2"]))
            lines.append(
                f"| {variant} | {seed} | {run['stage2'][-1] * 100:.2f} | {s1} | "
                f"{reach if reach is not None else 'not reached'} | "
                f"{reach + s1 if reach is not None else 'not reached'} | "
                f"{run['stage2'][best] * 100:.2f} ({best + 1}) |")
    levels = [80.0, 84.0, 86.0, round(threshold * 100 - 0.5, 2), round(threshold * 100, 2)]
    lines += ["", "Epochs to reach each test accuracy, mean over seeds (stage-2 epochs / "
              "total epochs incl. stage 1; n/N = seeds that reached it, the mean is over those):",
              "", "| run | " + " | ".join(f"{level:.2f}%" for level in levels) + " |",
              "|---|" + "---|" * len(levels)]
    for variant in VARIANTS:
        group = [runs[f"{variant} | {s}"] for s in seeds if f"{variant} | {s}" in runs]
        if not group:
            continue
        cells = []
        for level in levels:
            reached = [(first_reaching(r["stage2"], level / 100 - 1e-9), len(r["stage1"]))
                       for r in group]
            reached = [(e, s1) for e, s1 in reached if e is not None]
            if not reached:
                cells.append(f"0/{len(group)}")
                continue
            e2 = np.mean([e for e, _ in reached])
            cells.append(f"{e2:.1f} / {e2 + np.mean([s1 for _, s1 in reached]):.1f} "
                         f"({len(reached)}/{len(group)})")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "| run | seed | final % − scratch final % (paired) |", "|---|---|---|"]
    for variant in VARIANTS[1:]:
        diffs = []
        for seed in seeds:
            run, base = runs.get(f"{variant} | {seed}"), runs.get(f"scratch | {seed}")
            if run is None or base is None:
                continue
            diffs.append((run["stage2"][-1] - base["stage2"][-1]) * 100)
            lines.append(f"| {variant} | {seed} | {diffs[-1]:+.2f} |")
        if diffs:
            sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan")
            lines.append(f"| {variant} | mean ± sd | {np.mean(diffs):+.2f} ± {sd:.2f} |")
    lines += ["", "Mean test accuracy % after each stage-2 epoch (stage 1 not counted):", "",
              "| run | " + " | ".join(str(e) for e in range(1, len(scratch[0]["stage2"]) + 1))
              + " |", "|---|" + "---|" * len(scratch[0]["stage2"])]
    for variant in VARIANTS:
        curves = [runs[f"{variant} | {s}"]["stage2"] for s in seeds if f"{variant} | {s}" in runs]
        if curves:
            mean = np.mean(curves, axis=0) * 100
            lines.append(f"| {variant} | " + " | ".join(f"{v:.2f}" for v in mean) + " |")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = results["runs"]
    seeds = sorted({r["seed"] for r in runs.values()})
    scratch = [runs[f"scratch | {s}"]["stage2"][-1] for s in seeds if f"scratch | {s}" in runs]
    threshold = float(np.mean(scratch)) * 100
    colours = {"scratch": "tab:blue", "fsp_init": "tab:orange", "fsp_recipe": "tab:green"}
    labels = {"scratch": "scratch", "fsp_init": "FSP-initialised (stage 1, then labels)",
              "fsp_recipe": "bench `fsp` recipe (one fit, one cosine)"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, total in zip(axes, (False, True)):
        for variant in VARIANTS:
            curves = [runs[f"{variant} | {s}"] for s in seeds if f"{variant} | {s}" in runs]
            if not curves:
                continue
            for run in curves:
                s1 = len(run["stage1"])
                ys = (run["stage1"] + run["stage2"]) if total else run["stage2"]
                xs = np.arange(1, len(ys) + 1) if total else np.arange(1, len(ys) + 1)
                ax.plot(xs, np.array(ys) * 100, color=colours[variant], alpha=0.25, lw=0.8)
            s1 = len(curves[0]["stage1"])
            mean2 = np.mean([r["stage2"] for r in curves], axis=0) * 100
            xs2 = np.arange(1, len(mean2) + 1) + (s1 if total else 0)
            ax.plot(xs2, mean2, color=colours[variant], lw=2, marker="o", ms=3,
                    label=f"{labels[variant]}, mean of {len(curves)} seeds")
            if total and s1:
                ax.axvspan(0.5, s1 + 0.5, color=colours[variant], alpha=0.06)
        ax.axhline(threshold, color="k", ls="--", lw=1,
                   label=f"scratch final, mean ({threshold:.2f}%)")
        ax.set_xlabel("epochs incl. FSP stage 1" if total else "epochs on the labels (stage 2)")
        ax.set_ylim(max(70.0, ax.get_ylim()[0]), None)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy %")
    axes[0].set_title("stage-2 epochs only")
    axes[1].set_title("total epochs (FSP stage 1 shaded)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Fashion-MNIST fmnist-cnn (15k subset): scratch vs FSP-initialised student")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=12, help="stage-2 (label) epochs")
    parser.add_argument("--stage1-epochs", type=int, default=3, help="FSP stage-1 epochs")
    parser.add_argument("--variants", default="scratch,fsp_init")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--out", default="results/fsp_curves/fmnist.json")
    parser.add_argument("--report", action="store_true", help="only print the tables")
    parser.add_argument("--plot", default=None, help="write the plot (PNG) here")
    args = parser.parse_args(argv)
    results = {"runs": {}}
    if os.path.exists(args.out):
        with open(args.out) as handle:
            results = json.load(handle)
    if not args.report:
        pair = bench.PAIRS[PAIR]
        data = bench.load_data(pair, pair.train_size)
        teacher = keras.saving.load_model(bench.find_teacher(pair, tempfile.gettempdir()))
        results["settings"] = {
            "pair": PAIR, "train_size": len(data[0][1]), "test": len(data[1][1]),
            "epochs": args.epochs, "stage1_epochs": args.stage1_epochs,
            "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "steps_per_epoch": -(-len(data[0][1]) // args.batch_size),
            "schedule": "adam-cosine per fit",
        }
        for variant in args.variants.split(","):
            if variant not in VARIANTS:
                raise ValueError(f"Unknown variant '{variant}'; known: {', '.join(VARIANTS)}.")
            for seed in (int(s) for s in args.seeds.split(",")):
                key = f"{variant} | {seed}"
                if key in results["runs"]:
                    continue
                common = (seed, data)
                if variant == "scratch":
                    row = run_scratch(*common, args.epochs, args.batch_size, args.learning_rate)
                elif variant == "fsp_init":
                    row = run_fsp_init(*common, teacher, args.epochs, args.stage1_epochs,
                                       args.batch_size, args.learning_rate)
                else:
                    row = run_fsp_recipe(*common, teacher, args.epochs, args.stage1_epochs,
                                         args.batch_size, args.learning_rate)
                results["runs"][key] = {"variant": variant, "seed": seed, **row}
                print(f"{key}: final {row['stage2'][-1] * 100:.2f}% test", flush=True)
                os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
                with open(args.out, "w") as handle:
                    json.dump(results, handle, indent=1)
    print(report(results))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
