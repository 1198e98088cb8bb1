#!/usr/bin/env python
"""Train-step and evaluate-step time of keras-kd against keras.distillation.

Everything runs in ONE process on the reference pair of shared/ANCHORS.md
(synthetic 32x32x3 data from `numpy.random.default_rng(1234)`, the 945,898
parameter teacher, the 107,978 parameter student, the feature pair
teacher `t_stage3_conv2` <-> student `s_stage3_conv`, both (8, 8, 128),
Adam(1e-3), T = 4, student loss weight 0.5).

Configurations (each in graph mode; those marked * also with jit_compile=True):

  train  student*        student.compile(...) alone: the student's own step
  fwd    teacher*        teacher forward alone, training=False
  train  kd_KD*          keras_kd.Distiller + KD(temperature=4)
  train  kd_KD+feat*     keras_kd.Distiller + KD + FeatureMSE(feature pair)
  train  keras_logits*   keras.distillation.Distiller + LogitsDistillation(
                         temperature=4, loss=keras.losses.KLDivergence())
  train  keras_logits+feat*  the same + FeatureDistillation(feature pair)
  eval   student / kd_KD (default: student only) / keras_logits

Mechanics, identical for every configuration: each model is compiled, warmed
up with `fit(...)`/`evaluate(...)` for two steps (tracing, XLA compilation and
optimizer building happen there and are excluded), then timed by calling
`model.train_function(iterator)` (resp. `model.test_function(iterator)`)
`--steps` times on a prebuilt `tf.data` iterator, which is exactly the inner
loop of `Model.fit` (resp. `evaluate`) minus callbacks and the progress bar.
The timer stops after the last step's logs are pulled to the host.
Evaluate rows run EVAL_STEP_FACTOR × --steps steps per round (they are cheap). The teacher
forward is a `tf.function` (jit_compile as the row says) that takes the next
batch from its own iterator and returns `teacher(x, training=False)`, so it
pays the same iterator cost as a train step.

Configurations run round-robin, in a freshly shuffled order every round, and
every ratio is taken within a round: train rows against the floor
(student train step + teacher forward) of the same round and mode, evaluate
rows against the student's own evaluate of the same round. The tables report
medians over rounds with the min-max range, because absolute milliseconds
drift 10-15 % between runs on shared machines.

Usage:
    python benchmarks/step_time.py --quick              # ~1 minute smoke run
    python benchmarks/step_time.py --backend jax --quick   # the JAX rows (fused_floor.py)
    python benchmarks/step_time.py --backend torch --quick # the PyTorch rows (fused_floor.py)
    python benchmarks/step_time.py --write              # full run, writes BENCHMARKS.md
    python benchmarks/step_time.py --rounds 9 --steps 12 --no-xla --out raw.json
"""

import argparse
import gc
import json
import os
import platform
import random
import shlex
import statistics
import sys
import time



def _backend_from_argv(argv):
    """The `--backend` value, read before Keras is imported (it fixes the backend)."""
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    return "tensorflow"


def jax_command(argv, backend="jax"):
    """`--backend jax` (or `torch`): the same reference pair timed by
    benchmarks/fused_floor.py on that backend (keras_kd KD and KD + feature,
    keras.distillation, the fused floor and the old two-call floor); this
    script's tf.data/tf.function rows are TensorFlow's own."""
    forwarded, skip = ["--backend", backend], False
    names = {"--rounds": "--rounds", "--steps": "--steps", "--out": "--write-json",
             "--seed": "--seed", "--paired-rounds": "--paired-rounds"}
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        key, _, value = arg.partition("=")
        if key in names:
            value = value or (argv[i + 1] if i + 1 < len(argv) else "")
            skip = "=" not in arg
            forwarded += [names[key], value]
        elif arg == "--quick":
            forwarded.append("--quick")
        elif key in ("--backend", "--xla", "--no-xla", "--write"):
            skip = key == "--backend" and "=" not in arg
        else:
            forwarded.append(arg)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fused_floor.py")
    return [sys.executable, script, *forwarded]


if _backend_from_argv(sys.argv[1:]) in ("jax", "torch") and __name__ == "__main__":
    command = jax_command(sys.argv[1:], _backend_from_argv(sys.argv[1:]))
    os.execv(command[0], command)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

import keras_kd  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The reference protocol (shared/ANCHORS.md).
N_SAMPLES = 4096
BATCH = 128
TEMPERATURE = 4.0
STUDENT_LOSS_WEIGHT = 0.5
TEACHER_FEATURE = "t_stage3_conv2"
STUDENT_FEATURE = "s_stage3_conv"
TEACHER_PARAMS = 945_898
STUDENT_PARAMS = 107_978

# Targets quoted in the interpretation.
TARGET_KD = 1.02
TARGET_FEAT = 1.05
TARGET_EVAL = 1.05
KERAS_LOGITS_REF = "0.97–1.00"
KERAS_FEAT_REF = "1.23–1.30"

# Evaluate steps are ~10× cheaper than train steps: time more of them per round.
EVAL_STEP_FACTOR = 4


# ---------------------------------------------------------------------------
# Data and models.
def make_dataset():
    rng = np.random.default_rng(1234)
    x = rng.random((N_SAMPLES, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(N_SAMPLES,)).astype("int64")
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(BATCH, drop_remainder=True)
        .repeat()
        .prefetch(2)
    )


def build_teacher():
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    for stage, channels in enumerate((32, 64, 128), start=1):
        for j in (1, 2):
            x = layers.Conv2D(
                channels, 3, padding="same", activation="relu",
                name=f"t_stage{stage}_conv{j}",
            )(x)
        x = layers.MaxPooling2D(2, name=f"t_stage{stage}_pool")(x)
    x = layers.Flatten(name="t_flatten")(x)
    x = layers.Dense(320, activation="relu", name="t_dense")(x)
    outputs = layers.Dense(10, name="t_logits")(x)
    model = keras.Model(inputs, outputs, name="teacher")
    assert model.count_params() == TEACHER_PARAMS, model.count_params()
    return model


def build_student():
    # Same seed for every copy: every configuration trains the same student.
    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 3), name="image")
    x = inputs
    for stage, channels in enumerate((16, 32, 128), start=1):
        x = layers.Conv2D(
            channels, 3, padding="same", activation="relu",
            name=f"s_stage{stage}_conv",
        )(x)
        x = layers.MaxPooling2D(2, name=f"s_stage{stage}_pool")(x)
    x = layers.Flatten(name="s_flatten")(x)
    x = layers.Dense(32, activation="relu", name="s_dense")(x)
    outputs = layers.Dense(10, name="s_logits")(x)
    model = keras.Model(inputs, outputs, name="student")
    assert model.count_params() == STUDENT_PARAMS, model.count_params()
    return model


def student_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_kwargs(xla):
    return dict(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=student_loss(),
        jit_compile=bool(xla),
    )


def make_student_model(teacher, xla):
    model = build_student()
    model.compile(**compile_kwargs(xla))
    return model


def make_kd(teacher, xla, feature=False):
    terms = [keras_kd.losses.KD(temperature=TEMPERATURE, weight=1 - STUDENT_LOSS_WEIGHT)]
    if feature:
        terms.append(
            keras_kd.losses.FeatureMSE(
                TEACHER_FEATURE, STUDENT_FEATURE, weight=1 - STUDENT_LOSS_WEIGHT
            )
        )
    model = keras_kd.Distiller(
        teacher, build_student(), losses=terms,
        student_loss_weight=STUDENT_LOSS_WEIGHT,
    )
    return model.compile(**compile_kwargs(xla))


def make_keras(teacher, xla, feature=False):
    terms = [
        keras.distillation.LogitsDistillation(
            temperature=TEMPERATURE, loss=keras.losses.KLDivergence()
        )
    ]
    if feature:
        terms.append(
            keras.distillation.FeatureDistillation(
                loss="mse",
                teacher_layer_name=TEACHER_FEATURE,
                student_layer_name=STUDENT_FEATURE,
            )
        )
    model = keras.distillation.Distiller(
        teacher=teacher, student=build_student(), distillation_losses=terms,
        student_loss_weight=STUDENT_LOSS_WEIGHT,
    )
    model.compile(**compile_kwargs(xla))
    return model


# ---------------------------------------------------------------------------
# Timed runners: each returns seconds for `steps` steps.
def _sync(logs):
    # Pull one value to the host so that every step has finished.
    value = logs if not isinstance(logs, dict) else next(iter(logs.values()))
    return float(np.asarray(value).ravel()[0])


def _timed(fn, iterator, steps):
    """Runs `fn(iterator)` `steps` times; returns (wall s, process CPU s)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        out = fn(iterator)
    _sync(out)
    return time.perf_counter() - wall, time.process_time() - cpu


class TrainRunner:
    """`fit`'s inner loop: `model.train_function(iterator)`, no callbacks."""

    kind = "train"

    def __init__(self, model, dataset):
        self.model = model
        model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)  # build + trace
        self.iterator = iter(dataset)
        self.run(2)  # first call on this iterator

    def run(self, steps):
        self.model.reset_metrics()  # as fit does at each epoch start
        return _timed(self.model.train_function, self.iterator, steps)


class EvalRunner:
    """`evaluate`'s inner loop: `model.test_function(iterator)`."""

    kind = "eval"

    def __init__(self, model, dataset):
        self.model = model
        model.evaluate(dataset, steps=2, verbose=0)  # trace
        self.iterator = iter(dataset)
        self.run(2)

    def run(self, steps):
        self.model.reset_metrics()
        return _timed(self.model.test_function, self.iterator, steps)


class ForwardRunner:
    """Teacher forward: a `tf.function` that takes the next batch from its
    iterator and returns `teacher(x, training=False)`; the inner function is
    jit-compiled when `xla`, as Keras compiles its train steps."""

    kind = "forward"

    def __init__(self, teacher, dataset, xla):
        inner = tf.function(
            lambda x: teacher(x, training=False),
            jit_compile=bool(xla), reduce_retracing=True,
        )

        @tf.function(reduce_retracing=True)
        def forward(iterator):
            x, _ = iterator.get_next()
            return inner(x)

        self.forward = forward
        self.iterator = iter(dataset)
        self.run(3)  # trace + compile

    def run(self, steps):
        return _timed(self.forward, self.iterator, steps)


# ---------------------------------------------------------------------------
# Configurations.
TRAIN_ROWS = [
    # key, label
    ("student", "(a) student alone: `student.fit` step"),
    ("teacher", "(b) teacher forward alone (`tf.function`, training=False)"),
    ("kd_kd", "(c) keras_kd `Distiller` + `KD(T=4)`"),
    ("kd_kd_feat", "(d) keras_kd `Distiller` + `KD` + `FeatureMSE` (feature pair)"),
    ("keras_logits", "(e) keras `Distiller` + `LogitsDistillation(T=4, KLDivergence)`"),
    ("keras_logits_feat", "(f) keras `Distiller` + `LogitsDistillation` + `FeatureDistillation`"),
]
EVAL_ROWS = [
    ("eval_student", "student `evaluate`"),
    ("eval_kd", "keras_kd `Distiller.evaluate` (default: student only)"),
    ("eval_keras", "keras `Distiller.evaluate` (runs the teacher too)"),
]
LABELS = dict(TRAIN_ROWS + EVAL_ROWS)
TARGETS = {
    "kd_kd": f"≤ {TARGET_KD:.2f}",
    "kd_kd_feat": f"≤ {TARGET_FEAT:.2f}",
    "keras_logits": f"ref. {KERAS_LOGITS_REF}",
    "keras_logits_feat": f"ref. {KERAS_FEAT_REF}",
    "eval_kd": f"≤ {TARGET_EVAL:.2f}",
}


def build_runners(dataset, use_xla, log):
    teacher = build_teacher()
    runners = {}
    makers = {
        "student": make_student_model,
        "kd_kd": lambda t, xla: make_kd(t, xla),
        "kd_kd_feat": lambda t, xla: make_kd(t, xla, feature=True),
        "keras_logits": lambda t, xla: make_keras(t, xla),
        "keras_logits_feat": lambda t, xla: make_keras(t, xla, feature=True),
    }
    modes = [False, True] if use_xla else [False]
    for xla in modes:
        suffix = "@xla" if xla else ""
        for key, _ in TRAIN_ROWS:
            start = time.perf_counter()
            if key == "teacher":
                runners[key + suffix] = ForwardRunner(teacher, dataset, xla)
            else:
                model = makers[key](teacher, xla)
                runners[key + suffix] = TrainRunner(model, dataset)
                if bool(model.jit_compile) != xla:
                    raise RuntimeError(
                        f"{key}{suffix}: asked jit_compile={xla}, Keras kept "
                        f"{model.jit_compile}"
                    )
            log(f"  warm-up {key + suffix:<22} {time.perf_counter() - start:6.1f} s")
    # Evaluate, graph mode, on the graph-mode models above.
    for key, source in (
        ("eval_student", "student"),
        ("eval_kd", "kd_kd"),
        ("eval_keras", "keras_logits"),
    ):
        start = time.perf_counter()
        runners[key] = EvalRunner(runners[source].model, dataset)
        log(f"  warm-up {key:<22} {time.perf_counter() - start:6.1f} s")
    return runners


# ---------------------------------------------------------------------------
# Statistics.
def med_range(values):
    return statistics.median(values), min(values), max(values)


def compute(times, use_xla):
    """times: key -> list of ms/step, one per round. Returns the ratio series."""
    rounds = len(times["student"])
    ratios = {}
    for suffix in ([""] + (["@xla"] if use_xla else [])):
        floor = [
            times["student" + suffix][r] + times["teacher" + suffix][r]
            for r in range(rounds)
        ]
        ratios["floor" + suffix] = floor
        for key, _ in TRAIN_ROWS:
            ratios[key + suffix] = [
                times[key + suffix][r] / floor[r] for r in range(rounds)
            ]
    for key, _ in EVAL_ROWS:
        ratios[key] = [
            times[key][r] / times["eval_student"][r] for r in range(rounds)
        ]
    xla_slowdown = {}
    if use_xla:
        for key, _ in TRAIN_ROWS:
            xla_slowdown[key] = [
                times[key + "@xla"][r] / times[key][r] for r in range(rounds)
            ]
    return ratios, xla_slowdown


def fmt_ms(values):
    m, lo, hi = med_range(values)
    return f"{m:.1f}", f"{lo:.1f}–{hi:.1f}"


def fmt_ratio(values):
    m, lo, hi = med_range(values)
    return f"{m:.3f}", f"{lo:.3f}–{hi:.3f}"


def tables(times, ratios, xla_slowdown, use_xla, cpu_ratios):
    def cpu(key):
        return f"{statistics.median(cpu_ratios[key]):.3f}"

    out = []
    out.append("### Train step, graph mode (jit_compile=False)\n")
    out.append(
        "| configuration | median ms/step | ms min–max | ratio to floor, median "
        "| ratio min–max | CPU-time ratio, median | target / reference |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---|")
    floor_ms = fmt_ms(ratios["floor"])
    for key, label in TRAIN_ROWS:
        ms, ms_rng = fmt_ms(times[key])
        r, r_rng = fmt_ratio(ratios[key])
        c = cpu(key)
        if key in ("student", "teacher"):
            r, r_rng, c = "(part of floor)", "", ""
        out.append(
            f"| {label} | {ms} | {ms_rng} | {r} | {r_rng} | {c} | {TARGETS.get(key, '')} |"
        )
    out.append(
        f"| floor = (a) + (b), same round | {floor_ms[0]} | {floor_ms[1]} "
        "| 1 | | 1 | |"
    )
    if use_xla:
        out.append("\n### Train step, XLA (jit_compile=True)\n")
        out.append(
            "| configuration | median ms/step | ms min–max | ratio to XLA floor, "
            "median | ratio min–max | XLA / graph, median (min–max) |"
        )
        out.append("|---|---:|---:|---:|---:|---:|")
        for key, label in TRAIN_ROWS:
            ms, ms_rng = fmt_ms(times[key + "@xla"])
            r, r_rng = fmt_ratio(ratios[key + "@xla"])
            if key in ("student", "teacher"):
                r, r_rng = "(part of floor)", ""
            s, s_rng = fmt_ratio(xla_slowdown[key])
            out.append(
                f"| {label} | {ms} | {ms_rng} | {r} | {r_rng} | {s} ({s_rng}) |"
            )
        f_ms = fmt_ms(ratios["floor@xla"])
        out.append(f"| XLA floor = (a) + (b), same round | {f_ms[0]} | {f_ms[1]} | 1 | | |")
    out.append("\n### Evaluate step, graph mode\n")
    out.append(
        "| configuration | median ms/step | ms min–max | ratio to student "
        "evaluate, median | ratio min–max | CPU-time ratio, median | target |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---|")
    for key, label in EVAL_ROWS:
        ms, ms_rng = fmt_ms(times[key])
        r, r_rng = fmt_ratio(ratios[key])
        out.append(
            f"| {label} | {ms} | {ms_rng} | {r} | {r_rng} | {cpu(key)} | "
            f"{TARGETS.get(key, '')} |"
        )
    out.append(
        "\nRatios are wall-clock unless labelled CPU-time: the CPU-time column "
        "divides the process CPU seconds (all threads, `time.process_time`) "
        "the same way, a second view that is less sensitive to other "
        "processes taking the cores but counts thread-pool spinning."
    )
    return "\n".join(out)


def interpretation(ratios, xla_slowdown, use_xla, loads=None, nproc=None,
                   cpu_ratios=None):
    med = {k: statistics.median(v) for k, v in ratios.items()}
    cmed = {k: statistics.median(v) for k, v in (cpu_ratios or ratios).items()}
    lines = []
    if loads and nproc and max(float(v) for v in loads) > 0.75 * nproc:
        lines.append(
            f"- The machine was busy (load average {loads[0]} at the start, "
            f"{loads[1]} at the end, on {nproc} cores): other processes "
            "competed for the CPU, so single rounds are noisy; trust the "
            "medians of per-round ratios, not the absolute milliseconds, and "
            "read a difference of a few per cent as within noise."
        )

    def verdict(value, target):
        return "meets" if value <= target else "MISSES"

    kd, feat, ev = med["kd_kd"], med["kd_kd_feat"], med["eval_kd"]
    lines.append(
        f"- keras_kd + KD: {kd:.3f} × floor, {verdict(kd, TARGET_KD)} the "
        f"≤ {TARGET_KD:.2f} target (CPU time: {cmed['kd_kd']:.3f}); keras "
        f"`LogitsDistillation` in the same rounds: {med['keras_logits']:.3f} "
        f"(CPU time {cmed['keras_logits']:.3f}; ANCHORS reference {KERAS_LOGITS_REF})."
    )
    lines.append(
        f"- keras_kd + KD + one feature term: {feat:.3f} × floor, "
        f"{verdict(feat, TARGET_FEAT)} the ≤ {TARGET_FEAT:.2f} target (CPU "
        f"time: {cmed['kd_kd_feat']:.3f}). Keras's "
        f"`FeatureDistillation`, which runs the student a second time for the "
        f"feature, costs {med['keras_logits_feat']:.3f} × floor here "
        f"(ANCHORS reference {KERAS_FEAT_REF}); keras_kd's single pass is "
        f"{med['keras_logits_feat'] / feat:.2f}× faster per step on this pair."
    )
    lines.append(
        f"- evaluate: keras_kd `Distiller.evaluate` is {ev:.3f} × the "
        f"student's own evaluate, {verdict(ev, TARGET_EVAL)} the "
        f"≤ {TARGET_EVAL:.2f} target (CPU time: {cmed['eval_kd']:.3f}); "
        "keras.distillation's evaluate runs the "
        f"teacher on every batch and costs {med['eval_keras']:.2f} ×."
    )
    if use_xla:
        slow = [statistics.median(v) for v in xla_slowdown.values()]
        lines.append(
            f"- XLA (jit_compile=True) on this CPU: {min(slow):.2f}–{max(slow):.2f} × "
            "the graph-mode time, row by row (ANCHORS: 1.3–2.4 × slower). "
            "Reported as measured, not tuned: on CPU, prefer graph mode. Ratios "
            f"to the XLA floor: keras_kd KD {med['kd_kd@xla']:.3f}, keras_kd "
            f"KD+feature {med['kd_kd_feat@xla']:.3f}, keras logits "
            f"{med['keras_logits@xla']:.3f}, keras logits+feature "
            f"{med['keras_logits_feat@xla']:.3f}."
        )
    lines.append(
        "- Ratios below 1 do not mean a distiller is cheaper than its parts "
        "by that much: a distiller step runs the teacher and the student in "
        "one `tf.function`, where the runtime may overlap their independent "
        "ops, while the floor pays two calls; and the teacher forward alone "
        "is the row that swings most when other processes take the cores, "
        "which inflates some rounds' floor. The CPU-time column, close to 1 "
        "for the single-pass rows, is the steadier view."
    )
    return "\n".join(lines)


from keras_kd.tools.timing import machine_info  # noqa: E402  (re-exported for perf_matrix)


def git_state():
    """The repo's HEAD commit and whether keras_kd/ differs from it."""
    import subprocess

    def git(*cmd):
        return subprocess.run(
            ["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=30
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "keras_kd")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + (" + uncommitted changes in keras_kd/" if dirty else "")


def versions():
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_kd": keras_kd.__version__,
        "keras_kd_git": git_state(),
        "numpy": np.__version__,
    }


def command_line():
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
    return shlex.join(["python", script] + sys.argv[1:])


def write_markdown(path, args, info, vers, table, interp, elapsed, loads):
    text = f"""# Benchmarks: step time of keras-kd vs keras.distillation

Generated by `benchmarks/step_time.py`; rerun it to refresh this file.

## Command

```
{command_line()}
```

{args.rounds} rounds × {args.steps} train steps (evaluate rows: {args.steps * EVAL_STEP_FACTOR} steps) per
configuration per round, round-robin in a freshly shuffled order every round,
warm-up and compilation excluded; {"graph mode and XLA" if args.xla else "graph mode only"};
total wall time {elapsed / 60:.1f} min (imports excluded).

## Machine and versions

- {info['nproc']} cores (`nproc`), CPU: {info['cpu']}, RAM: {info['ram']}; shared with
  other users, load average {loads[0]} at the start and {loads[1]} at the end.
- Python {vers['python']}, TensorFlow {vers['tensorflow']}, Keras {vers['keras']},
  keras_kd {vers['keras_kd']} (git {vers['keras_kd_git']}), NumPy {vers['numpy']}.

## Protocol

The reference pair of `shared/ANCHORS.md`: synthetic data
(`numpy.random.default_rng(1234)`, x ~ U[0,1) of shape (4096, 32, 32, 3),
y ~ randint(10)), `tf.data` batch {BATCH} (drop remainder), repeat, prefetch 2;
teacher 945,898 parameters, student 107,978; feature pair teacher
`{TEACHER_FEATURE}` ↔ student `{STUDENT_FEATURE}`, both (8, 8, 128), MSE;
Adam(1e-3), T = {TEMPERATURE:g}, student loss weight {STUDENT_LOSS_WEIGHT}
(the distillation terms get weight {1 - STUDENT_LOSS_WEIGHT} in keras_kd so that both
libraries optimize the same objective); hard-label loss
`SparseCategoricalCrossentropy(from_logits=True)`, no compiled metrics.

- Train rows: each model is compiled, warmed up with a 2-step `fit`, then
  timed by calling `model.train_function(iterator)` `--steps` times on a
  prebuilt `tf.data` iterator, i.e. `fit`'s inner loop without callbacks.
- Teacher forward: a `tf.function` (same `jit_compile` as the row) that takes
  the next batch from its own iterator and returns `teacher(x, training=False)`.
- Floor = student train step + teacher forward, measured in the same round
  and mode; every ratio is per round, and the tables give the median over
  rounds and the min–max range.
- Evaluate rows: `model.test_function(iterator)`, the inner loop of
  `evaluate`, on the graph-mode models (a), (c) and (e) above, without
  compiled metrics; ratio to the student's own evaluate in the same round.

## Results

{table}

## Interpretation

{interp}
"""
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 12, --quick 2)")
    p.add_argument("--steps", type=int, default=None,
                   help="train steps per configuration per round (default 8, --quick 3); "
                        f"evaluate rows run {EVAL_STEP_FACTOR}× as many (they are cheaper)")
    p.add_argument("--xla", dest="xla", action="store_true", default=None,
                   help="also time jit_compile=True (default, except with --quick)")
    p.add_argument("--no-xla", dest="xla", action="store_false", help="graph mode only")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (~1 min): 2 rounds × 3 steps, graph mode only unless --xla")
    p.add_argument("--out", default=None, help="write the raw per-round timings as JSON here")
    p.add_argument("--write", nargs="?", const=os.path.join(REPO, "BENCHMARKS.md"),
                   default=None, metavar="PATH",
                   help="write the markdown report (default path: BENCHMARKS.md at the repo root)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-round order shuffle")
    p.add_argument("--paired-rounds", type=int, default=0,
                   help="with --backend jax/torch: fused_floor.py's paired rounds (forwarded)")
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default="tensorflow",
                   help="jax, torch: time the same pair on that Keras backend through "
                        "benchmarks/fused_floor.py (--rounds/--steps/--out/--quick forwarded)")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 12
    if args.steps is None:
        args.steps = 3 if args.quick else 8
    if args.xla is None:
        args.xla = not args.quick
    if args.rounds < 1 or args.steps < 1:
        p.error("--rounds and --steps must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    load_start = f"{os.getloadavg()[0]:.2f}"

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    info, vers = machine_info(), versions()
    log(f"machine: {info}; versions: {vers}")
    dataset = make_dataset()
    log("building and warming up (excluded from timing)...")
    runners = build_runners(dataset, args.xla, log)
    log(f"warm-up done in {time.perf_counter() - t_start:.0f} s; timing "
        f"{args.rounds} rounds × {args.steps} steps")

    keys = list(runners)
    times = {k: [] for k in keys}
    cpu_times = {k: [] for k in keys}
    order_rng = random.Random(args.seed)
    for r in range(args.rounds):
        order = keys[:]
        order_rng.shuffle(order)
        t_round = time.perf_counter()
        for key in order:
            gc.collect()
            steps = args.steps * (EVAL_STEP_FACTOR if runners[key].kind == "eval" else 1)
            wall, cpu = runners[key].run(steps)
            times[key].append(1000.0 * wall / steps)
            cpu_times[key].append(1000.0 * cpu / steps)
        log(f"  round {r + 1}/{args.rounds}: {time.perf_counter() - t_round:.1f} s; "
            f"student {times['student'][-1]:.1f} ms, teacher {times['teacher'][-1]:.1f} ms, "
            f"kd {times['kd_kd'][-1]:.1f} ms, kd+feat {times['kd_kd_feat'][-1]:.1f} ms")

    ratios, xla_slowdown = compute(times, args.xla)
    cpu_ratios, _ = compute(cpu_times, args.xla)
    table = tables(times, ratios, xla_slowdown, args.xla, cpu_ratios)
    elapsed = time.perf_counter() - t_start
    loads = (load_start, f"{os.getloadavg()[0]:.2f}")
    interp = interpretation(
        ratios, xla_slowdown, args.xla, loads, info["nproc"], cpu_ratios
    )
    print(table)
    print()
    print(interp)
    print(f"\n{args.rounds} rounds × {args.steps} steps, {elapsed:.0f} s in all.")

    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "command": command_line(),
                    "machine": info,
                    "versions": vers,
                    "rounds": args.rounds,
                    "steps": args.steps,
                    "ms_per_step": times,
                    "cpu_ms_per_step": cpu_times,
                    "ratios": ratios,
                    "cpu_ratios": cpu_ratios,
                    "xla_over_graph": xla_slowdown,
                },
                f,
                indent=1,
            )
    if args.write:
        write_markdown(args.write, args, info, vers, table, interp, elapsed, loads)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
