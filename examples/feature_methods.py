"""Every distillation method on the embedded digits, next to the scratch student.

    python examples/feature_methods.py                      # all methods, graph mode
    python examples/feature_methods.py --xla --methods kd,fsp --seeds 1,2

Teacher: saved_models/digits_teacher.keras (2 conv blocks per stage, 32/64/128
channels, 289k parameters). Students: the same three stages with ONE conv
block each; `thin` (8/16/32 channels, 6.4k parameters) for every method, and
`width-matched` (32/64/128 channels, 93k parameters) for FSP, whose flow
matrices need the teacher's channel counts. Every run uses the same seed,
data order and epochs as its scratch baseline. Prints a markdown table and
writes it (and the raw numbers as JSON) to --out.
"""

import argparse
import json
import os
import time

import keras
import numpy as np

import keras_kd
from keras_kd import datasets, zoo
from keras_kd.zoo import recipes as methods


def student(kind):
    widths = (8, 16, 32) if kind == "thin" else (32, 64, 128)
    return zoo.cnn((8, 8, 1), 10, widths=widths, convs_per_stage=1, pool_after=(2,), name=f"student_{kind}")


def run_one(method, kind, seed, epochs, xla, teacher, data):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = student(kind)
    # The models and a training batch let the rules scale and balance the
    # weights (keras_kd.zoo.recipes); without them the CIFAR weights apply.
    plan = methods.recipe(method, epochs, teacher=teacher, student=model,
                          sample=(x_train[:256], y_train[:256]))
    distiller = keras_kd.Distiller(teacher, model, losses=plan.terms, student_loss_weight=plan.student_loss_weight)
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"], jit_compile=xla,
    )
    start = time.perf_counter()
    # plan.epochs: FSP's initialisation stage runs ahead of the run's epochs.
    history = distiller.fit(x_train, y_train, batch_size=32, epochs=plan.epochs, verbose=0,
                            callbacks=plan.callbacks, shuffle=True)
    seconds = time.perf_counter() - start
    logits = keras.ops.convert_to_numpy(model(x_test, training=False))
    return {
        "method": method, "student": kind, "seed": seed, "xla": xla,
        "accuracy": float((logits.argmax(-1) == y_test).mean()),
        "params": model.count_params(), "train_seconds": seconds,
        "final_total_loss": float(history.history["loss"][-1]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(methods.METHODS))
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--xla", action="store_true", help="compile(jit_compile=True)")
    parser.add_argument("--teacher", default="saved_models/digits_teacher.keras")
    parser.add_argument("--out", default="results/feature_methods")
    args = parser.parse_args()

    teacher = keras.saving.load_model(args.teacher)
    data = (datasets.load("digits", "train", as_numpy=True), datasets.load("digits", "test", as_numpy=True))
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for method in args.methods.split(","):
        kinds = ["width-matched"] if method in methods.WIDTH_MATCHED else ["thin"]
        if method == "scratch":
            kinds = ["thin", "width-matched"]
        for kind in kinds:
            for seed in seeds:
                row = run_one(method, kind, seed, args.epochs, args.xla, teacher, data)
                rows.append(row)
                print(f"{method:9s} {kind:13s} seed {seed}: {row['accuracy'] * 100:.2f}% "
                      f"({row['train_seconds']:.0f} s)", flush=True)

    table = format_table(rows, seeds, args)
    print("\n" + table)
    os.makedirs(args.out, exist_ok=True)
    suffix = "xla" if args.xla else "graph"
    with open(os.path.join(args.out, f"results_{suffix}.json"), "w") as handle:
        json.dump(rows, handle, indent=1)
    with open(os.path.join(args.out, f"table_{suffix}.md"), "w") as handle:
        handle.write(table + "\n")


def format_table(rows, seeds, args):
    def accuracies(method, kind):
        return [r["accuracy"] * 100 for r in rows if r["method"] == method and r["student"] == kind]

    mode = "XLA (jit_compile=True)" if args.xla else "graph mode"
    lines = [
        f"Digits test accuracy (%), {args.epochs} epochs, seeds {seeds}, {mode}; mean ± std over seeds.",
        "",
        "| method | student (params) | scratch | distilled | Δ |",
        "|---|---|---:|---:|---:|",
    ]
    for method in dict.fromkeys(r["method"] for r in rows):
        if method == "scratch":
            continue
        kind = "width-matched" if method in methods.WIDTH_MATCHED else "thin"
        base, ours = accuracies("scratch", kind), accuracies(method, kind)
        params = next(r["params"] for r in rows if r["student"] == kind)
        delta = np.mean(ours) - np.mean(base) if base else float("nan")
        base_text = f"{np.mean(base):.2f} ± {np.std(base):.2f}" if base else "n/a"
        lines.append(f"| {method} | {kind} ({params:,}) | {base_text} | "
                     f"{np.mean(ours):.2f} ± {np.std(ours):.2f} | {delta:+.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
