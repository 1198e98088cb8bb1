#!/usr/bin/env python
"""Train-step time against a fused floor, on TensorFlow, JAX or PyTorch.

    python benchmarks/fused_floor.py --backend tensorflow --write-json results/ff_tf.json
    python benchmarks/fused_floor.py --backend jax --write-json results/ff_jax.json
    python benchmarks/fused_floor.py --backend torch --write-json results/ff_torch.json
    python benchmarks/fused_floor.py --quick --backend jax      # ~1 min smoke run

The reference pair of shared/ANCHORS.md (synthetic 32×32×3 data from
`numpy.random.default_rng(1234)`, the 945,898-parameter teacher, the
107,978-parameter student, feature pair `t_stage3_conv2` ↔ `s_stage3_conv`,
Adam(1e-3), T = 4, student loss weight 0.5, terms weighted 0.5).

The floor is ONE hand-written compiled function per step that takes the
batch, runs the teacher forward and the student's training step (the same
losses: 0.5 · CE + 0.5 · KD, + 0.5 · MSE on the feature pair), and nothing
else: no metrics, no callbacks, no Keras trainer. Every other row is timed
through Keras's own `train_function` (the inner loop of `fit`), so a ratio to
the fused floor is what the library's step costs beyond the arithmetic. The
old floor (the student's own `fit` step + a separate teacher forward, two
calls) is kept beside it for continuity with BENCHMARKS.md's earlier tables.

On PyTorch the floor is eager, as Keras's torch trainer is by default: the
teacher forward under `torch.no_grad()`, the student forward, the losses,
`torch.autograd.grad` and `optimizer.apply`, nothing else (`torch.compile` of
Keras layers traces for minutes on CPU through graph breaks). The batches are
torch tensors there, as Keras's torch epoch iterator hands them to the step.

Each configuration is warmed up (tracing/compilation excluded), then timed in
rounds, round-robin in a shuffled order; ratios are taken within a round and
reported as the median over rounds with the min–max range. Every row reads
the same pre-built list of numpy batches, cycling, on either backend.

`--paired-rounds N` adds N rounds in which each library row is timed against
its fused floor one step each in turn (row, floor, floor, row, ...): on a
shared machine a burst of other work then lands on both sides of the ratio,
and the per-round spread shrinks (rows "...@paired" in the output).
"""

import argparse
import functools
import json
import os
import platform
import random
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"), default="tensorflow")
    p.add_argument("--rounds", type=int, default=None, help="default 9 (--quick: 2)")
    p.add_argument("--steps", type=int, default=None, help="steps per row per round (default 10)")
    p.add_argument("--paired-rounds", type=int, default=0,
                   help="extra rounds timing each library row against its fused floor one "
                        "step each in turn (default 0)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--write-json", default=None, help="write the raw timings here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 9)
    args.steps = args.steps or (3 if args.quick else 10)
    return args


ARGS = parse_args()
os.environ["KERAS_BACKEND"] = ARGS.backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd.tools.timing import machine_info  # noqa: E402

BATCH, N_BATCHES = 128, 8
T, W = 4.0, 0.5
TEACHER_FEATURE, STUDENT_FEATURE = "t_stage3_conv2", "s_stage3_conv"


def batches():
    rng = np.random.default_rng(1234)
    x = rng.random((BATCH * N_BATCHES, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(BATCH * N_BATCHES,)).astype("int32")
    return [(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(N_BATCHES)]


def build_teacher():
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for stage, channels in enumerate((32, 64, 128), start=1):
        for j in (1, 2):
            x = layers.Conv2D(channels, 3, padding="same", activation="relu",
                              name=f"t_stage{stage}_conv{j}")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Dense(320, activation="relu")(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(10)(x), name="teacher")
    assert model.count_params() == 945_898
    return model


def build_student():
    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for stage, channels in enumerate((16, 32, 128), start=1):
        x = layers.Conv2D(channels, 3, padding="same", activation="relu",
                          name=f"s_stage{stage}_conv")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Dense(32, activation="relu")(layers.Flatten()(x))
    model = keras.Model(inputs, layers.Dense(10, name="s_logits")(x), name="student")
    assert model.count_params() == 107_978
    return model


def ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# ---------------------------------------------------------------------------
# Keras-driven rows: `train_function` on a cycling iterator of numpy batches.
class Cycle:
    def __init__(self, data):
        self.data, self.i = data, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.i = (self.i + 1) % len(self.data)
        return self.data[self.i]


def _sync(value):
    if isinstance(value, dict):
        value = next(iter(value.values()))
    return float(np.asarray(ops.convert_to_numpy(value)).ravel()[0])


class KerasRow:
    """`model.train_function` as `fit` calls it (TF: on an iterator; JAX: on
    the state and an iterator), without callbacks."""

    def __init__(self, model, data):
        self.model = model
        x = np.concatenate([ops.convert_to_numpy(b[0]) for b in data])
        y = np.concatenate([ops.convert_to_numpy(b[1]) for b in data])
        model.fit(x[:2 * BATCH], y[:2 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
        self.iterator = Cycle(data)
        if ARGS.backend == "jax":
            self.state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                              optimizer_variables=True, metrics_variables=True)
        self.run(2)

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            if ARGS.backend == "jax":
                logs, self.state = self.model.train_function(self.state, self.iterator)
            elif ARGS.backend == "torch":  # fit hands it a list of steps_per_execution batches
                logs = self.model.train_function([next(self.iterator)])
            else:
                logs = self.model.train_function(self.iterator)
        _sync(logs)
        return time.perf_counter() - start


# ---------------------------------------------------------------------------
# The fused floor, hand-written per backend.
def _losses(t_out, s_out, y):
    """0.5·CE + 0.5·KD (+ 0.5·MSE of the feature pair when the models
    return [logits, feature])."""
    t_logits, s_logits = (t_out[0], s_out[0]) if isinstance(s_out, (list, tuple)) else (t_out, s_out)
    t_feat = t_out[1] if isinstance(t_out, (list, tuple)) else None
    s_feat = s_out[1] if isinstance(s_out, (list, tuple)) else None
    total = W * ops.mean(ops.sparse_categorical_crossentropy(y, s_logits, from_logits=True))
    log_p = ops.log_softmax(t_logits / T, axis=-1)
    log_q = ops.log_softmax(s_logits / T, axis=-1)
    total = total + W * T * T * ops.mean(ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1))
    if s_feat is not None:
        total = total + W * ops.mean(ops.square(t_feat - s_feat))
    return total


class FusedRow:
    def __init__(self, teacher, data, feature):
        student = build_student()
        self.feature = feature
        self.student, self.teacher = student, teacher
        if feature:  # one pass of each model returns [logits, feature]
            self.student = keras.Model(student.input, [
                student.output, student.get_layer(STUDENT_FEATURE).output])
            self.teacher = keras.Model(teacher.input, [
                teacher.output, teacher.get_layer(TEACHER_FEATURE).output])
        self.optimizer = keras.optimizers.Adam(1e-3)
        self.optimizer.build(self.student.trainable_variables)
        self.iterator = Cycle(data)
        self.step = {"tensorflow": self._tensorflow_step, "jax": self._jax_step,
                     "torch": self._torch_step}[ARGS.backend]()
        self.run(3)

    def _tensorflow_step(self):
        import tensorflow as tf

        student, teacher, optimizer = self.student, self.teacher, self.optimizer

        @tf.function
        def step(x, y):
            t_out = teacher(x, training=False)
            with tf.GradientTape() as tape:
                s_out = student(x, training=True)
                loss = _losses(t_out, s_out, y)
            grads = tape.gradient(loss, student.trainable_variables)
            optimizer.apply(grads, student.trainable_variables)
            return loss

        return lambda batch: step(*batch)

    def _jax_step(self):
        import jax

        student, teacher, optimizer = self.student, self.teacher, self.optimizer
        t_vars = ([v.value for v in teacher.trainable_variables],
                  [v.value for v in teacher.non_trainable_variables])
        state = [[v.value for v in student.trainable_variables],
                 [v.value for v in student.non_trainable_variables],
                 [v.value for v in optimizer.variables]]

        # The state is donated, as Keras's own jitted train step donates its
        # state: the floor reuses buffers instead of copying them each step.
        @functools.partial(jax.jit, donate_argnums=(1,))
        def step(t_vars, state, x, y):
            trainable, non_trainable, opt = state
            t_out, _ = teacher.stateless_call(t_vars[0], t_vars[1], x, training=False)

            def objective(trainable):
                s_out, updated = student.stateless_call(trainable, non_trainable, x, training=True)
                return _losses(t_out, s_out, y), updated

            (loss, updated), grads = jax.value_and_grad(objective, has_aux=True)(trainable)
            trainable, opt = optimizer.stateless_apply(opt, grads, trainable)
            return loss, [trainable, updated, opt]

        def call(batch):
            loss, new_state = step(t_vars, state, *batch)
            state[:] = new_state
            return loss

        return call

    def _torch_step(self):
        import torch

        student, teacher, optimizer = self.student, self.teacher, self.optimizer
        variables = student.trainable_variables

        def step(batch):
            x, y = batch
            with torch.no_grad():
                t_out = teacher(x, training=False)
            s_out = student(x, training=True)
            loss = _losses(t_out, s_out, y)
            grads = torch.autograd.grad(loss, [v.value for v in variables])
            with torch.no_grad():
                optimizer.apply(list(grads), variables)
            return loss.detach()

        return step

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step(next(self.iterator))
        _sync(loss)
        return time.perf_counter() - start


class TeacherForwardRow:
    """The old floor's second call: a compiled teacher forward alone."""

    def __init__(self, teacher, data):
        self.iterator = Cycle(data)
        if ARGS.backend == "tensorflow":
            import tensorflow as tf

            self.forward = tf.function(lambda x: teacher(x, training=False))
        elif ARGS.backend == "torch":
            import torch

            def forward(x):
                with torch.no_grad():
                    return teacher(x, training=False)

            self.forward = forward
        else:
            import jax

            values = ([v.value for v in teacher.trainable_variables],
                      [v.value for v in teacher.non_trainable_variables])
            jitted = jax.jit(lambda v, x: teacher.stateless_call(v[0], v[1], x, training=False)[0])
            self.forward = lambda x: jitted(values, x)
        self.run(3)

    def run(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            out = self.forward(next(self.iterator)[0])
        _sync(out)
        return time.perf_counter() - start


# ---------------------------------------------------------------------------
def keras_kd_distiller(teacher, feature):
    terms = [keras_kd.losses.KD(temperature=T, weight=W)]
    if feature:
        terms.append(keras_kd.losses.FeatureMSE(TEACHER_FEATURE, STUDENT_FEATURE, weight=W))
    model = keras_kd.Distiller(teacher, build_student(), losses=terms, student_loss_weight=W)
    return model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=ce())


def keras_distiller(teacher, feature):
    terms = [keras.distillation.LogitsDistillation(temperature=T, loss=keras.losses.KLDivergence())]
    if feature:
        terms.append(keras.distillation.FeatureDistillation(
            loss="mse", teacher_layer_name=TEACHER_FEATURE, student_layer_name=STUDENT_FEATURE))
    model = keras.distillation.Distiller(teacher=teacher, student=build_student(),
                                         distillation_losses=terms, student_loss_weight=W)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=ce())
    return model


def student_alone():
    model = build_student()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=ce())
    return model


ROWS = ("fused_kd", "fused_kd_feat", "keras_kd_kd", "keras_kd_kd_feat", "keras_logits",
        "keras_logits_feat", "student", "teacher")
# row -> the fused floor it is measured against
FLOOR_OF = {"keras_kd_kd": "fused_kd", "keras_kd_kd_feat": "fused_kd_feat",
            "keras_logits": "fused_kd", "keras_logits_feat": "fused_kd_feat"}


def main():
    data = batches()
    if ARGS.backend == "torch":  # as Keras's torch epoch iterator delivers them
        data = [tuple(ops.convert_to_tensor(a) for a in batch) for batch in data]
    keras.utils.set_random_seed(0)
    weights = build_teacher().get_weights()

    def teacher():
        # One teacher per row: on JAX a row's compiled step owns (donates)
        # the buffers of the state it is given, so rows must not share them.
        model = build_teacher()
        model.set_weights(weights)
        return model

    t0 = time.perf_counter()
    rows = {
        "fused_kd": FusedRow(teacher(), data, feature=False),
        "fused_kd_feat": FusedRow(teacher(), data, feature=True),
        "keras_kd_kd": KerasRow(keras_kd_distiller(teacher(), False), data),
        "keras_kd_kd_feat": KerasRow(keras_kd_distiller(teacher(), True), data),
        "keras_logits": KerasRow(keras_distiller(teacher(), False), data),
        "keras_logits_feat": KerasRow(keras_distiller(teacher(), True), data),
        "student": KerasRow(student_alone(), data),
        "teacher": TeacherForwardRow(teacher(), data),
    }
    print(f"warm-up {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    times = {k: [] for k in rows}
    order_rng = random.Random(ARGS.seed)
    load_start = os.getloadavg()[0]
    for r in range(ARGS.rounds):
        order = list(rows)
        order_rng.shuffle(order)
        for key in order:
            times[key].append(1000.0 * rows[key].run(ARGS.steps) / ARGS.steps)
        print(f"round {r + 1}/{ARGS.rounds}: " + ", ".join(
            f"{k} {times[k][-1]:.1f}" for k in ROWS), file=sys.stderr)
    # Paired: each library row against its floor, one step of each in turn
    # (the order flipping every step), so a burst of load from elsewhere on
    # the machine hits both sides of a ratio alike.
    paired = {k: [] for k in FLOOR_OF}
    for r in range(ARGS.paired_rounds):
        order = list(FLOOR_OF)
        order_rng.shuffle(order)
        for key in order:
            row, floor = rows[key], rows[FLOOR_OF[key]]
            spent = {key: 0.0, "floor": 0.0}
            for i in range(ARGS.steps):
                pair = ((key, row), ("floor", floor)) if i % 2 == 0 else ((("floor", floor), (key, row)))
                for name, which in pair:
                    spent[name] += which.run(1)
            paired[key].append(spent[key] / spent["floor"])
        print(f"paired round {r + 1}/{ARGS.paired_rounds}: " + ", ".join(
            f"{k} {v[-1]:.3f}" for k, v in paired.items()), file=sys.stderr)
    ratios = {}
    for key, floor in FLOOR_OF.items():
        ratios[key] = [a / b for a, b in zip(times[key], times[floor])]
        if paired[key]:
            ratios[key + "@paired"] = paired[key]
        old = [s + t for s, t in zip(times["student"], times["teacher"])]
        ratios[key + "@old_floor"] = [a / b for a, b in zip(times[key], old)]
    summary = {k: (statistics.median(v), min(v), max(v)) for k, v in ratios.items()}
    ms = {k: (statistics.median(v), min(v), max(v)) for k, v in times.items()}
    print(f"\nbackend {ARGS.backend}, {ARGS.rounds} rounds x {ARGS.steps} steps, "
          f"load {load_start:.2f} -> {os.getloadavg()[0]:.2f}")
    for k in ROWS:
        print(f"  {k:<20} {ms[k][0]:8.1f} ms/step ({ms[k][1]:.1f}-{ms[k][2]:.1f})")
    for k, (m, lo, hi) in summary.items():
        print(f"  {k:<30} {m:.3f} ({lo:.3f}-{hi:.3f})")
    if ARGS.write_json:
        os.makedirs(os.path.dirname(os.path.abspath(ARGS.write_json)), exist_ok=True)
        with open(ARGS.write_json, "w") as handle:
            json.dump({"backend": ARGS.backend, "rounds": ARGS.rounds, "steps": ARGS.steps,
                       "paired_rounds": ARGS.paired_rounds,
                       "machine": machine_info(), "python": platform.python_version(),
                       "keras": keras.__version__, "load": [load_start, os.getloadavg()[0]],
                       "ms_per_step": times, "ratios": ratios}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
