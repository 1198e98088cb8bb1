#!/usr/bin/env python
"""Performance matrix: every method × {graph, XLA} × {float32, mixed_float16}.

    python benchmarks/perf_matrix.py --quick                 # smoke run, < 2 min
    python benchmarks/perf_matrix.py --write                 # full run, writes BENCHMARKS.md block
    python benchmarks/perf_matrix.py --modes graph-f32,xla-f32 --methods kd,dkd --out raw.json

For every method of `keras_kd.zoo.recipes.METHODS` except scratch, wired by
`keras_kd.zoo.recipes.recipe` (every term at full weight, as in
`methods_step_time.py`), the keras_kd `Distiller` train step is timed in each
mode and divided by the floor of the same mode and round: the student's own
train step + the teacher forward (`tf.function`, training=False). Also:

- cached teacher (kd, dkd, nkd): the same distiller fed
  `keras_kd.teachers.caching.cache(teacher, data)` batches (x, y, teacher logits);
  its floor is the student step alone, and the ratio to the live floor is
  reported too;
- keras.distillation: `Distiller` + `LogitsDistillation` (≈ kd, thin student)
  and `Distiller` + `LogitsDistillation` + `FeatureDistillation` on an
  equal-width tap (`stage2_relu`, width-matched student; Keras's losses cannot
  own a regressor), next to the exact keras_kd equivalent of the latter
  (`KD` + `FeatureMSE`, no adapter, same student). A configuration that fails
  to build or run is recorded with its exception type, not fatal.

Pair: `keras_kd.zoo.digits_teacher` (289k params, random init) and the
students of `methods_step_time.py` (thin 8/16/32 channels; width-matched
32/64/128 for FSP and the equal-width feature rows), synthetic 8×8×1 data
(`numpy.random.default_rng(1234)`), batch 64, Adam(1e-3). Mixed-precision
modes build every model under `keras.config.set_dtype_policy("mixed_float16")`
(Keras then wraps the optimizer in a `LossScaleOptimizer`).

Mechanics are those of `step_time.py` (its `TrainRunner` / `ForwardRunner`):
warm-up (tracing, XLA compilation, optimizer build) is excluded; each
configuration runs `--steps` calls of `model.train_function(iterator)`; all
configurations of all modes run round-robin in a freshly shuffled order every
round; ratios are taken within a round and the median over rounds reported
with the min–max range. `--write` replaces the block between the
`perf-matrix` markers in BENCHMARKS.md (nothing else in the file changes).
"""

import argparse
import contextlib
import gc
import io
import json
import os
import random
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import step_time  # noqa: E402  (sets the backend/env, then imports TF and Keras)
from step_time import (  # noqa: E402
    ForwardRunner, TrainRunner, command_line, machine_info, med_range, versions,
)
from methods_step_time import student as build_student  # noqa: E402
from report_block import write_block  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import losses, teachers, zoo
from keras_kd.zoo import recipes as methods  # noqa: E402

START, END = "<!-- perf-matrix:start -->", "<!-- perf-matrix:end -->"

MODES = {  # name -> (jit_compile, dtype policy)
    "graph-f32": (False, "float32"),
    "graph-mixed": (False, "mixed_float16"),
    "xla-f32": (True, "float32"),
    "xla-mixed": (True, "mixed_float16"),
}
ALL_METHODS = tuple(m for m in methods.METHODS if m != "scratch")
LOGIT_METHODS = ("kd", "dkd", "nkd")  # cached-teacher rows
INPUT_SHAPE = (8, 8, 1)
N_SAMPLES = 2048
BATCH = 64
TEMPERATURE = 4.0
FEATURE_TAP = "stage2_relu"  # 64 channels in the teacher and the width-matched student
KERAS_ROWS = {
    "keras_logits": ("keras.distillation `LogitsDistillation(T=4)` (≈ kd)", "thin"),
    "keras_feature": ("keras.distillation `LogitsDistillation` + `FeatureDistillation` "
                      f"(`{FEATURE_TAP}`, equal width)", "width-matched"),
    "kd_feature_eq": ("keras_kd `KD` + `FeatureMSE` (same tap, no adapter): "
                      "keras_kd's equivalent of the row above", "width-matched"),
}
QUICK = dict(rounds=3, steps=3, modes="graph-f32,xla-mixed", methods="kd")
DEFAULT = dict(rounds=7, steps=10, modes=",".join(MODES), methods=",".join(ALL_METHODS))
# Rough cost model for the printed estimate (seconds on 2 idle cores).
WARMUP_S = {False: 2.5, True: 8.0}
STEP_MS = {False: 12.0, True: 20.0}


def log(msg):
    """Progress goes to stderr; the table to stdout."""
    print(msg, file=sys.stderr, flush=True)


def kind_of(method):
    return "width-matched" if method in methods.WIDTH_MATCHED else "thin"


def make_data():
    """Finite (cacheable) and repeated pipelines of the same batches."""
    rng = np.random.default_rng(1234)
    x = rng.random((N_SAMPLES, *INPUT_SHAPE)).astype("float32")
    y = rng.integers(0, 10, size=(N_SAMPLES,)).astype("int64")
    finite = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)
    return finite, finite.repeat().prefetch(2)


def _compile(model, xla):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=step_time.student_loss(),
                  jit_compile=bool(xla))
    if bool(model.jit_compile) != bool(xla):
        raise RuntimeError(f"asked jit_compile={xla}, Keras kept {model.jit_compile}")
    return model


def make_method(teacher, name, xla):
    plan = methods.recipe(name, epochs=4, temperature=None if name in methods.OWN_TEMPERATURE
                          else TEMPERATURE)
    model = keras_kd.Distiller(teacher, build_student(kind_of(name)), losses=plan.terms,
                               student_loss_weight=plan.student_loss_weight)
    for term in plan.terms:  # every term at full weight (a recipe's stage 2 may zero some)
        term.weight = max(term.weight, 1e-3)
    return _compile(model, xla)


def make_keras(teacher, row, xla):
    terms = [keras.distillation.LogitsDistillation(
        temperature=TEMPERATURE, loss=keras.losses.KLDivergence())]
    if row == "keras_feature":
        terms.append(keras.distillation.FeatureDistillation(
            loss="mse", teacher_layer_name=FEATURE_TAP, student_layer_name=FEATURE_TAP))
    model = keras.distillation.Distiller(
        teacher=teacher, student=build_student(KERAS_ROWS[row][1]),
        distillation_losses=terms, student_loss_weight=0.5)
    return _compile(model, xla)


def make_feature_eq(teacher, xla):
    terms = [losses.KD(temperature=TEMPERATURE, weight=0.5),
             losses.FeatureMSE(FEATURE_TAP, FEATURE_TAP, weight=0.5)]
    model = keras_kd.Distiller(teacher, build_student("width-matched"), losses=terms,
                               student_loss_weight=0.5)
    return _compile(model, xla)


def plan_configs(modes, method_names, cached=True, keras_rows=True):
    """The (mode, row) keys to time, floor parts first."""
    rows = []
    kinds = {kind_of(m) for m in method_names}
    if keras_rows:
        kinds |= {kind for _, kind in KERAS_ROWS.values()}
    rows += [f"student:{k}" for k in ("thin", "width-matched") if k in kinds]
    rows.append("teacher")
    rows += list(method_names)
    if cached:
        rows += [f"{m}:cached" for m in method_names if m in LOGIT_METHODS]
    if keras_rows:
        rows += list(KERAS_ROWS)
    return [(mode, row) for mode in modes for row in rows]


def estimate_seconds(configs, rounds, steps):
    total = 0.0
    for mode, _ in configs:
        xla = MODES[mode][0]
        total += WARMUP_S[xla] + rounds * (steps * STEP_MS[xla] / 1000 + 0.05)
    return total


def _error(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}" + (f": {text[0][:120]}" if text else "")


def build_runners(configs, finite, data, log):
    """Builds and warms up every configuration; returns (runners, failures)."""
    runners, failures = {}, {}
    previous = keras.config.dtype_policy()
    warnings.filterwarnings("ignore", message=".*shuffle=True.*tf.data.Dataset")
    try:
        for mode in dict.fromkeys(mode for mode, _ in configs):
            xla, policy = MODES[mode]
            keras.config.set_dtype_policy(policy)
            keras.utils.set_random_seed(1)
            teacher = zoo.digits_teacher(INPUT_SHAPE)
            cached_data = None
            for row in [r for m, r in configs if m == mode]:
                key, start = f"{mode}/{row}", time.perf_counter()
                try:
                    if row == "teacher":
                        runners[key] = ForwardRunner(teacher, data, xla)
                    elif row.startswith("student:"):
                        student = _compile(build_student(row.split(":", 1)[1]), xla)
                        runners[key] = TrainRunner(student, data)
                    elif row.endswith(":cached"):
                        if cached_data is None:  # one teacher pass, kept in memory
                            t0 = time.perf_counter()
                            with contextlib.redirect_stdout(io.StringIO()):  # its Progbar
                                cached_data = teachers.caching.cache(teacher, finite).cache()
                                for _ in cached_data:
                                    pass
                            cached_data = cached_data.repeat().prefetch(2)
                            log(f"  teacher cache ({mode}): {time.perf_counter() - t0:.1f} s")
                        model = make_method(teacher, row.split(":", 1)[0], xla)
                        runners[key] = TrainRunner(model, cached_data)
                    elif row == "kd_feature_eq":
                        runners[key] = TrainRunner(make_feature_eq(teacher, xla), data)
                    elif row in KERAS_ROWS:
                        runners[key] = TrainRunner(make_keras(teacher, row, xla), data)
                    else:
                        runners[key] = TrainRunner(make_method(teacher, row, xla), data)
                except Exception as exc:  # recorded in the table, not fatal
                    failures[key] = _error(exc)
                    log(f"  FAILED  {key:<32} {failures[key]}")
                    continue
                log(f"  warm-up {key:<32} {time.perf_counter() - start:6.1f} s")
    finally:
        keras.config.set_dtype_policy(previous)
    return runners, failures


def time_rounds(runners, rounds, steps, seed, log, failures):
    """Round-robin timing; returns (wall, process CPU) dicts of key -> list of
    ms/step, one entry per round."""
    times = {key: [] for key in runners}
    cpu_times = {key: [] for key in runners}
    order_rng = random.Random(seed)
    # The traced graphs of many models make a full gc.collect() cost ~0.1 s per
    # model: freeze what exists now, so the per-configuration collect below
    # only walks the garbage of the previous configuration.
    gc.collect()
    gc.freeze()
    for key in list(runners):  # one untimed step each: the first round ran slow
        try:
            runners[key].run(1)
        except Exception as exc:
            failures[key] = _error(exc)
            log(f"  FAILED  {key} on its first call: {failures[key]}")
    t0 = time.perf_counter()
    for r in range(rounds):
        order = [k for k in runners if k not in failures]
        order_rng.shuffle(order)
        t_round = time.perf_counter()
        for key in order:
            gc.collect()
            try:
                wall, cpu = runners[key].run(steps)
            except Exception as exc:
                failures[key] = _error(exc)
                log(f"  FAILED  {key} while timing: {failures[key]}")
                continue
            times[key].append(1000.0 * wall / steps)
            cpu_times[key].append(1000.0 * cpu / steps)
        spent = time.perf_counter() - t_round
        left = (time.perf_counter() - t0) / (r + 1) * (rounds - r - 1)
        log(f"  round {r + 1}/{rounds}: {spent:.1f} s (about {left:.0f} s of timing left)")
    gc.unfreeze()
    for key in failures:
        times.pop(key, None)
        cpu_times.pop(key, None)
    return times, cpu_times


def compute(times, configs):
    """Per-round ratios: key -> {"ratio": [...], "ratio_live": [...]}."""
    out = {}
    for mode, row in configs:
        key = f"{mode}/{row}"
        if key not in times or row == "teacher" or row.startswith("student:"):
            continue
        base = row.split(":", 1)[0]
        kind = KERAS_ROWS[row][1] if row in KERAS_ROWS else kind_of(base)
        student_ms = times.get(f"{mode}/student:{kind}")
        teacher_ms = times.get(f"{mode}/teacher")
        if not student_ms or not teacher_ms:
            continue
        n = min(len(times[key]), len(student_ms), len(teacher_ms))
        live = [times[key][r] / (student_ms[r] + teacher_ms[r]) for r in range(n)]
        if row.endswith(":cached"):
            out[key] = {"ratio": [times[key][r] / student_ms[r] for r in range(n)],
                        "ratio_live": live}
        else:
            out[key] = {"ratio": live}
    return out


def _cell(values, digits=2):
    if not values:
        return "—"
    m, lo, hi = med_range(values)
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def row_label(row):
    if row.endswith(":cached"):
        return f"{row.split(':')[0]}, cached teacher"
    if row in KERAS_ROWS:
        return KERAS_ROWS[row][0]
    return f"{row}" + (" (width-matched student)" if kind_of(row) == "width-matched" else "")


def tables(times, ratios, failures, configs):
    modes = list(dict.fromkeys(mode for mode, _ in configs))
    rows = list(dict.fromkeys(row for _, row in configs))
    head = "| configuration | " + " | ".join(f"`{m}`" for m in modes) + " |"
    rule = "|---|" + "---:|" * len(modes)

    def cell(mode, row, field="ratio"):
        key = f"{mode}/{row}"
        if key in failures:
            return f"failed: {failures[key].split(':')[0]}"
        return _cell(ratios.get(key, {}).get(field, []))

    out = ["**Ratio to the floor of the same mode** (student train step + teacher "
           "forward; cached rows: the student step alone), median over rounds (min–max):", "",
           head, rule]
    for row in rows:
        if row == "teacher" or row.startswith("student:"):
            continue
        out.append(f"| {row_label(row)} | " + " | ".join(cell(m, row) for m in modes) + " |")
        if row.endswith(":cached"):
            out.append(f"| {row.split(':')[0]}, cached teacher ÷ live floor | "
                       + " | ".join(cell(m, row, "ratio_live") for m in modes) + " |")
    out += ["", "**Median ms per step** (min–max) of the floor parts, for scale:", "", head, rule]
    for row in rows:
        if row == "teacher" or row.startswith("student:"):
            label = "teacher forward" if row == "teacher" else f"student alone ({row[8:]})"
            out.append(f"| {label} | " + " | ".join(
                f"failed: {failures[f'{m}/{row}'].split(':')[0]}" if f"{m}/{row}" in failures
                else _cell(times.get(f"{m}/{row}", []), 1) for m in modes) + " |")
    if failures:
        out += ["", "Failures (configuration: exception):", ""]
        out += [f"- `{key}`: {msg}" for key, msg in failures.items()]
    return "\n".join(out)


def markdown(table, args, info, vers, elapsed, loads):
    return "\n".join([
        START,
        "## Performance matrix: every method × graph/XLA × float32/mixed_float16 "
        "(`benchmarks/perf_matrix.py`)",
        "",
        f"Command: `{command_line()}`; {args.rounds} rounds × {args.steps} train steps per "
        f"configuration, all configurations round-robin in a shuffled order every round, "
        f"warm-up and compilation excluded; {elapsed / 60:.1f} min in all.",
        f"Machine: {info['nproc']} cores, {info['cpu']}, load average {loads[0]} at the start "
        f"and {loads[1]} at the end. Python {vers['python']}, TensorFlow {vers['tensorflow']}, "
        f"Keras {vers['keras']}, keras_kd {vers['keras_kd']} (git {vers['keras_kd_git']}).",
        f"Pair: `zoo.digits_teacher` (random init) → the thin student of "
        f"`methods_step_time.py` (FSP and the equal-width feature rows: the width-matched "
        f"one), synthetic {INPUT_SHAPE[0]}×{INPUT_SHAPE[1]}×{INPUT_SHAPE[2]} inputs, batch "
        f"{BATCH}, Adam(1e-3), each method as `keras_kd.zoo.recipes.recipe` wires it with every "
        "term at full weight.",
        "",
        table,
        "",
        "How to read it: each cell is the distiller's train step divided by the floor "
        "measured in the same mode and round — the student's own train step plus a "
        "teacher forward, the work any distillation step cannot avoid — so it is the "
        "overhead keras-kd (or keras.distillation) adds on top of that work, mode by mode; "
        "compare cells down a column, not across. Across columns only the floor's "
        "milliseconds are comparable, and on this CPU XLA (`jit_compile=True`) and "
        "`mixed_float16` are expected to be slower than graph mode with float32: the CPU "
        "kernels have no fast float16 path (mixed precision adds casts and loss scaling "
        "and pays off on GPUs/TPUs only), and XLA's CPU code generation for small convolutions "
        "is slower than TensorFlow's oneDNN kernels. Ratios below 1 mean the fused single "
        "`tf.function` overlaps the teacher and the student, while the floor pays two calls. "
        "Cached rows feed `teachers.caching.cache` outputs, so their floor is the student step "
        "alone (a ratio near 1 = the teacher is gone from the step); the \"÷ live floor\" "
        "row shows the saving against the live floor. On a shared machine read differences "
        "of a few per cent as noise.",
        END,
    ])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None,
                   help=f"rounds (default {DEFAULT['rounds']}, --quick {QUICK['rounds']})")
    p.add_argument("--steps", type=int, default=None,
                   help=f"train steps per configuration per round (default {DEFAULT['steps']}, "
                        f"--quick {QUICK['steps']})")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated (default: all but scratch; --quick {QUICK['methods']})")
    p.add_argument("--modes", default=None,
                   help=f"comma-separated subset of {','.join(MODES)} (default: all; "
                        f"--quick {QUICK['modes']})")
    p.add_argument("--no-cached", dest="cached", action="store_false",
                   help="skip the cached-teacher rows")
    p.add_argument("--no-keras", dest="keras_rows", action="store_false",
                   help="skip the keras.distillation rows")
    p.add_argument("--quick", action="store_true", help="smoke run (< 2 min)")
    p.add_argument("--out", default=None, help="write the raw per-round timings as JSON here")
    p.add_argument("--write", nargs="?", const=os.path.join(step_time.REPO, "BENCHMARKS.md"),
                   default=None, metavar="PATH",
                   help="write the perf-matrix block into this markdown file "
                        "(default BENCHMARKS.md at the repo root)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-round order shuffle")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else DEFAULT
    for name in ("rounds", "steps", "methods", "modes"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in ALL_METHODS]
    if bad:
        p.error(f"unknown method(s) {bad}; known: {','.join(ALL_METHODS)}")
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        p.error(f"unknown mode(s) {bad}; known: {','.join(MODES)}")
    if args.rounds < 1 or args.steps < 1:
        p.error("--rounds and --steps must be >= 1")
    return args


# The runners stay referenced until the process ends: destroying dozens of
# tf.data iterators mid-process (one of them over the in-memory teacher cache)
# was seen to hang once in tf.data's thread-pool teardown.
_KEEP_ALIVE = []


def run(modes, method_names, rounds, steps, cached=True, keras_rows=True, seed=0, log=log):
    """Builds, warms up and times the matrix; returns a dict of raw results."""
    configs = plan_configs(modes, method_names, cached, keras_rows)
    finite, data = make_data()
    runners, failures = build_runners(configs, finite, data, log)
    _KEEP_ALIVE.append(runners)
    times, cpu_times = time_rounds(runners, rounds, steps, seed, log, failures)
    return {"configs": configs, "ms_per_step": times, "failures": failures,
            "ratios": compute(times, configs), "cpu_ms_per_step": cpu_times,
            "cpu_ratios": compute(cpu_times, configs)}


def main(argv=None):
    args = parse_args(argv)
    configs = plan_configs(args.modes, args.methods, args.cached, args.keras_rows)
    est = estimate_seconds(configs, args.rounds, args.steps)
    t_start, load_start = time.perf_counter(), f"{os.getloadavg()[0]:.2f}"
    info, vers = machine_info(), versions()
    log(f"{len(configs)} configurations, {args.rounds} rounds × {args.steps} steps; "
        f"estimated {est / 60:.1f} min on 2 idle cores (warm-up included)")
    if os.getloadavg()[0] > 0.5:
        log(f"note: load average {os.getloadavg()[0]:.2f}: other processes share the CPU, "
            "expect noisy rounds")
    result = run(args.modes, args.methods, args.rounds, args.steps, args.cached,
                 args.keras_rows, args.seed, log)
    table = tables(result["ms_per_step"], result["ratios"], result["failures"], configs)
    elapsed = time.perf_counter() - t_start
    loads = (load_start, f"{os.getloadavg()[0]:.2f}")
    print(table)
    print(f"\n{len(configs)} configurations, {args.rounds} rounds × {args.steps} steps, "
          f"{elapsed:.0f} s in all (estimate was {est:.0f} s).")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": command_line(), "machine": info, "versions": vers,
                       "rounds": args.rounds, "steps": args.steps, "loads": loads,
                       "elapsed_s": elapsed, **{k: v for k, v in result.items()
                                                if k != "configs"}},
                      f, indent=1)
    if args.write:
        write_block(START, END, markdown(table, args, info, vers, elapsed, loads), args.write)
        log(f"wrote the perf-matrix block of {args.write}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # everything is written; skip tearing down ~80 models' iterators
