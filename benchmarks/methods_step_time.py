"""Train-step cost of every method, as a ratio to (student step + teacher forward).

    python benchmarks/methods_step_time.py [--rounds 5 --steps 20 --xla --write]

Pair: the shipped digits teacher (saved_models/digits_teacher.keras) and the
thin student of examples/feature_methods.py (8/16/32 channels; 32/64/128 for
FSP), batch 128 of the embedded digits, Adam(1e-3), each method as wired by
`keras_kd.zoo.recipes.recipe`. Per round, in a shuffled order: the student's own
train step, the teacher's forward (`tf.function`, training=False) and each
method's distiller train step, `--steps` steps each after warm-up; the ratio
is taken per round and the median over rounds reported. `--write` replaces
the block between the `methods-step-time` markers in BENCHMARKS.md.
"""

import argparse
import os
import sys
import platform
import random
import time

import keras
import numpy as np
import tensorflow as tf

import keras_kd
from keras_kd import datasets, zoo
from keras_kd.zoo import recipes as methods

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_block import write_block  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START, END = "<!-- methods-step-time:start -->", "<!-- methods-step-time:end -->"


def student(kind):
    widths = (32, 64, 128) if kind == "width-matched" else (8, 16, 32)
    keras.utils.set_random_seed(7)
    return zoo.cnn((8, 8, 1), 10, widths=widths, convs_per_stage=1, pool_after=(2,), name="student")


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def timer(step, iterator, steps):
    def run():
        for _ in range(steps):
            out = step(iterator)
        keras.ops.convert_to_numpy(tf.nest.flatten(out)[0])
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--methods", default=",".join(m for m in methods.METHODS if m != "scratch"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    x, y = datasets.load("digits", "train", as_numpy=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(128, drop_remainder=True).prefetch(2)
    teacher = keras.saving.load_model(os.path.join(REPO, "saved_models", "digits_teacher.keras"))

    runners = {}
    for kind in ("thin", "width-matched"):
        model = student(kind)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_loss(), jit_compile=args.xla)
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
        runners[f"student ({kind})"] = timer(model.train_function, iter(data), args.steps)
    forward = tf.function(lambda batch: teacher(batch[0], training=False), jit_compile=args.xla)
    teacher_iter = iter(data)
    forward(next(teacher_iter))
    runners["teacher forward"] = timer(lambda it: forward(next(it)), teacher_iter, args.steps)
    kinds = {}
    for name in args.methods.split(","):
        kind = "width-matched" if name in methods.WIDTH_MATCHED else "thin"
        plan = methods.recipe(name, epochs=4)
        distiller = keras_kd.Distiller(teacher, student(kind), losses=plan.terms,
                                       student_loss_weight=plan.student_loss_weight)
        for term in plan.terms:  # time every term at full weight (stage 2 may zero some)
            term.weight = max(term.weight, 1e-3)
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_loss(), jit_compile=args.xla)
        distiller.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
        runners[name] = timer(distiller.train_function, iter(data), args.steps)
        kinds[name] = kind

    times = {name: [] for name in runners}
    order = list(runners)
    for r in range(args.rounds):
        random.Random(r).shuffle(order)
        for name in order:
            start = time.perf_counter()
            runners[name]()
            times[name].append((time.perf_counter() - start) / args.steps * 1000)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    mode = "XLA" if args.xla else "graph mode"
    lines = [
        START,
        f"## Every method's train step ({mode}, `benchmarks/methods_step_time.py`)",
        "",
        f"Command: `python benchmarks/methods_step_time.py --rounds {args.rounds} --steps {args.steps}"
        f"{' --xla' if args.xla else ''} --write`; digits teacher (289k params) and the thin "
        f"student (6.4k; FSP: width-matched 95k), batch 128; {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}. "
        "Floor = the student's own train step + the teacher forward, same round; median of "
        "per-round ratios (min–max).",
        "",
        "| method | student | median ms/step | ratio to floor |",
        "|---|---|---:|---:|",
    ]
    teacher_ms = np.array(times["teacher forward"])
    for kind in ("thin", "width-matched"):
        lines.append(f"| (student alone) | {kind} | {np.median(times[f'student ({kind})']):.2f} | |")
    lines.append(f"| (teacher forward) | | {np.median(teacher_ms):.2f} | |")
    for name, kind in kinds.items():
        floor = np.array(times[f"student ({kind})"]) + teacher_ms
        ratio = np.array(times[name]) / floor
        lines.append(f"| {name} | {kind} | {np.median(times[name]):.2f} | "
                     f"{np.median(ratio):.3f} ({ratio.min():.3f}–{ratio.max():.3f}) |")
    lines.append(END)
    block = "\n".join(lines)
    print("\n" + block)
    if args.write:
        write_block(START, END, block)


if __name__ == "__main__":
    main()
