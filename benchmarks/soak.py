#!/usr/bin/env python
"""Soak run: resident memory over thousands of KD + feature steps.

keras_kd.Distiller with KD(T=4) + FeatureMSE on the reference pair of
shared/ANCHORS.md (benchmarks/step_time.py builds it; `--pair digits`: the
embedded digits data, the digits CNN teacher and the thin CNN student with
a 1x1-conv adapter, ~10x cheaper per step), trained with `fit`
for `--epochs` x `--steps-per-epoch` steps, with

- a per-step loss-weight schedule (`LossWeightScheduler(per_step=True)`:
  KD's weight warms up linearly over the first `--warmup-epochs` epochs, the
  feature term's weight drops in two steps, the student loss is constant),
  so a weight variable is assigned before every step;
- TensorBoard on (`update_freq=--tb-every` batches, histograms every 5
  epochs), writing into a temporary folder;
- the resident set size (VmRSS) sampled every `--sample-every` steps.

The growth is measured after warm-up (the first `--warmup-steps` steps:
tracing, optimizer slots, TensorBoard writers): growth = (median RSS of the
last 5 samples − median RSS of the first 5 samples after warm-up) / the
latter, target < 5 %; and the least-squares slope of RSS against step after
warm-up, in MiB per 1000 steps.

Usage:
    nice -n 10 python benchmarks/soak.py                        # 3000 steps, batch 128
    nice -n 10 python benchmarks/soak.py --pair digits --batch 32 --json soak.json
    python benchmarks/soak.py --epochs 2 --steps-per-epoch 3 --samples 64 --batch 8 \
        --warmup-steps 2 --sample-every 1                        # smoke
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
import keras_kd.zoo  # noqa: E402
import step_time  # noqa: E402  (the reference pair)
from rss import peak_rss_mib, rss_mib  # noqa: E402

TARGET_GROWTH = 0.05
CONTROLS = (None, "plain", "schedule", "tensorboard", "student", "student-tensorboard")
DESCRIPTIONS = {None: "KD + feature, per-step schedule, TensorBoard", "plain": "KD + feature only",
                "schedule": "KD + feature, per-step schedule", "tensorboard": "KD + feature, TensorBoard",
                "student": "student.fit alone",
                "student-tensorboard": "student.fit alone, TensorBoard"}


class RSSSampler(keras.callbacks.Callback):
    """Records (global step, seconds, RSS MiB) every `every` steps."""

    def __init__(self, every):
        super().__init__()
        self.every = every
        self.samples = []
        self._step = 0
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        self.samples.append((0, 0.0, rss_mib()))

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step % self.every == 0:
            self.samples.append((self._step, time.perf_counter() - self._start, rss_mib()))


def make_data(samples, batch, pair="reference"):
    if pair == "digits":
        x, y = keras_kd.datasets.load("digits", "train", as_numpy=True)
        return (tf.data.Dataset.from_tensor_slices((x, y.astype("int64")))
                .shuffle(len(y), seed=0).batch(batch, drop_remainder=True).repeat().prefetch(2))
    rng = np.random.default_rng(1234)
    x = rng.random((samples, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(samples,)).astype("int64")
    return (tf.data.Dataset.from_tensor_slices((x, y))
            .batch(batch, drop_remainder=True).repeat().prefetch(2))


def make_pair(pair):
    """(teacher, student, teacher feature, student feature, adapter)."""
    if pair == "digits":
        # The digits CNN teacher (289k parameters) and the thin CNN student of
        # the method benchmarks; stage 3 is (4, 4, 128) vs (4, 4, 32): a 1x1
        # conv adapter trains with the student.
        keras.utils.set_random_seed(7)
        student = keras_kd.zoo.cnn((8, 8, 1), 10, widths=(8, 16, 32), convs_per_stage=1,
                                   pool_after=(2,), name="student")
        return keras_kd.zoo.digits_teacher(), student, "stage3_relu", "stage3_relu", "auto"
    return (step_time.build_teacher(), step_time.build_student(), step_time.TEACHER_FEATURE,
            step_time.STUDENT_FEATURE, None)


def make_distiller(pair="reference"):
    teacher, student, teacher_feature, student_feature, adapter = make_pair(pair)
    kd = keras_kd.losses.KD(temperature=step_time.TEMPERATURE, name="kd")
    feature = keras_kd.losses.FeatureMSE(teacher_feature, student_feature, adapter=adapter,
                                         name="feature")
    distiller = keras_kd.Distiller(teacher, student,
                                   losses=[kd, feature],
                                   student_loss_weight=step_time.STUDENT_LOSS_WEIGHT)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), loss=step_time.student_loss())
    return distiller


def run(epochs=30, steps_per_epoch=100, samples=4096, batch=128, warmup_epochs=5,
        warmup_steps=500, sample_every=50, tb_every=100, log_dir=None, pair="reference",
        control=None, histogram_freq=5):
    """The soak run; returns a dict with the samples and the growth figures.

    `control` (for attributing a growth): "plain" drops the schedule and
    TensorBoard; "schedule" keeps only the schedule, "tensorboard" only
    TensorBoard; "student" trains the student alone with `student.fit`, no
    schedule, no TensorBoard (what Keras itself costs); "student-tensorboard"
    the same with TensorBoard."""
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}.")
    distiller = make_distiller(pair)
    if control in ("student", "student-tensorboard"):
        model = distiller.student
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=step_time.student_loss())
    else:
        model = distiller
    scheduler = keras_kd.regimes.schedules.LossWeightScheduler({
        "kd": keras_kd.regimes.schedules.LinearWarmup(0.5, warmup_epochs=warmup_epochs),
        "feature": keras_kd.regimes.schedules.Piecewise([max(epochs // 3, 1), max(2 * epochs // 3, 2)],
                                                [0.5, 0.25, 0.1]),
        "student_loss": step_time.STUDENT_LOSS_WEIGHT,
    }, per_step=True)
    sampler = RSSSampler(sample_every)
    with tempfile.TemporaryDirectory() as scratch:
        board = keras.callbacks.TensorBoard(log_dir or os.path.join(scratch, "tb"),
                                            update_freq=tb_every, histogram_freq=histogram_freq)
        callbacks = {None: [scheduler, board], "schedule": [scheduler], "tensorboard": [board],
                     "student-tensorboard": [board]}.get(control, []) + [sampler]
        started = time.perf_counter()
        history = model.fit(make_data(samples, batch, pair), epochs=epochs,
                            steps_per_epoch=steps_per_epoch, verbose=0,
                            callbacks=callbacks).history
        seconds = time.perf_counter() - started
    result = analyse(sampler.samples, warmup_steps)
    result.update({
        "steps": epochs * steps_per_epoch, "batch": batch, "pair": pair, "control": control, "seconds": seconds,
        "peak_mib": peak_rss_mib(), "samples": sampler.samples,
        "final_loss": float(history["loss"][-1]),
        "kd_weight_last": float(history["kd_weight"][-1]) if "kd_weight" in history else None,
        "feature_weight_last": (float(history["feature_weight"][-1])
                                if "feature_weight" in history else None),
    })
    return result


def analyse(samples, warmup_steps):
    """Growth after warm-up: medians of the first and last 5 samples past
    `warmup_steps`, and the least-squares slope in MiB per 1000 steps."""
    after = [(step, mib) for step, _, mib in samples if step >= warmup_steps]
    if len(after) < 2:
        raise ValueError(f"Only {len(after)} RSS samples after the {warmup_steps}-step warm-up; "
                         "run more steps or sample more often (--sample-every).")
    head = statistics.median(m for _, m in after[:5])
    tail = statistics.median(m for _, m in after[-5:])
    steps = np.array([s for s, _ in after], float)
    mib = np.array([m for _, m in after], float)
    slope = float(np.polyfit(steps, mib, 1)[0] * 1000) if len(set(steps)) > 1 else 0.0
    return {"warmup_steps": warmup_steps, "rss_after_warmup_mib": head, "rss_end_mib": tail,
            "growth": (tail - head) / head, "slope_mib_per_1000_steps": slope}


def curve_table(samples, every=250):
    lines = ["| step | seconds | RSS (MiB) |", "|---:|---:|---:|"]
    for step, seconds, mib in samples:
        if step % every == 0:
            lines.append(f"| {step} | {seconds:.0f} | {mib:.1f} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", choices=("reference", "digits"), default="reference",
                        help="reference: ANCHORS.md's synthetic 32x32x3 pair; digits: the "
                        "embedded digits data, digits CNN teacher, thin CNN student (fast)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup-epochs", type=int, default=5, help="KD weight warm-up")
    parser.add_argument("--warmup-steps", type=int, default=500, help="steps excluded from the growth")
    parser.add_argument("--sample-every", type=int, default=50)
    parser.add_argument("--tb-every", type=int, default=100, help="TensorBoard update_freq (batches)")
    parser.add_argument("--control", choices=CONTROLS[1:],
                        help="a control run: plain = no schedule, no TensorBoard; schedule / "
                        "tensorboard = only that one; student = student.fit alone; "
                        "student-tensorboard = student.fit with TensorBoard")
    parser.add_argument("--histogram-freq", type=int, default=5,
                        help="TensorBoard histogram_freq in epochs (0: none)")
    parser.add_argument("--json", help="also write the result here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = run(args.epochs, args.steps_per_epoch, args.samples, args.batch, args.warmup_epochs,
                 args.warmup_steps, args.sample_every, args.tb_every, pair=args.pair,
                 control=args.control, histogram_freq=args.histogram_freq)
    every = max(args.sample_every, (result["steps"] // 12) // args.sample_every * args.sample_every)
    print(curve_table(result["samples"], every))
    verdict = "met" if result["growth"] < TARGET_GROWTH else "NOT met"
    what = DESCRIPTIONS[args.control] + (f", histogram_freq={args.histogram_freq}"
                                         if "tensorboard" in str(args.control) or args.control is None else "")
    print(f"\n{what}; {result['pair']} pair, {result['steps']} steps at batch {result['batch']} in {result['seconds']:.0f} s; "
          f"RSS after {result['warmup_steps']} warm-up steps {result['rss_after_warmup_mib']:.1f} MiB, "
          f"at the end {result['rss_end_mib']:.1f} MiB: growth {result['growth'] * 100:+.2f} % "
          f"(target < {TARGET_GROWTH * 100:.0f} %: {verdict}); slope "
          f"{result['slope_mib_per_1000_steps']:+.2f} MiB per 1000 steps; peak {result['peak_mib']:.1f} MiB; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}.")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
