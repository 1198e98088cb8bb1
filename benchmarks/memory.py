#!/usr/bin/env python
"""Peak resident memory of keras-kd against keras.distillation.

The reference pair of shared/ANCHORS.md (built by benchmarks/step_time.py):
synthetic 32x32x3 data from `numpy.random.default_rng(1234)`, the 945,898
parameter teacher, the 107,978 parameter student, Adam(1e-3), T = 4, student
loss weight 0.5, the feature pair `t_stage3_conv2` <-> `s_stage3_conv`.

Configurations, EACH IN ITS OWN FRESH PROCESS (peak memory is per process):

  student        student.fit alone (the floor: what any training costs)
  kd             keras_kd.Distiller + KD(T=4)
  kd+feat        keras_kd.Distiller + KD + FeatureMSE(feature pair)
  keras          keras.distillation.Distiller + LogitsDistillation(T=4, KLDivergence)
  keras+feat     the same + FeatureDistillation(feature pair, mse)

A child process imports TensorFlow, builds the data and the models, trains
`--steps` steps with `fit` (graph mode, verbose=0) and reports its resident
set size (VmRSS) after the imports, before `fit`, after `fit`, and its peak
(`ru_maxrss`). Configurations run round-robin, `--repeats` times each, in a
shuffled order per round; the table gives medians and min-max. The ratios
compare peaks: keras_kd KD / keras logits and keras_kd KD+feature / keras
logits+feature (target <= 1.1), and also the training increments (peak minus
the RSS before `fit`), which exclude the ~0.5 GB TensorFlow costs any process.

Usage:
    nice -n 10 python benchmarks/memory.py                      # 3 rounds, 100 steps
    python benchmarks/memory.py --repeats 1 --steps 2 --samples 256 --batch 8  # smoke
    python benchmarks/memory.py --child kd --steps 2            # one child, JSON line
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CONFIGS = ("student", "kd", "kd+feat", "keras", "keras+feat")
COMPARISONS = (("kd", "keras"), ("kd+feat", "keras+feat"))
TARGET = 1.1


# ---------------------------------------------------------------------------
# The child: one configuration in this process.
def child(config, steps, samples, batch):
    """Trains `config` for `steps` steps in this process; returns the RSS
    figures (MiB) as a dict."""
    from rss import peak_rss_mib, rss_mib

    after_import_start = rss_mib()
    import numpy as np
    import tensorflow as tf
    import keras
    import step_time  # the reference pair

    after_import = rss_mib()
    rng = np.random.default_rng(1234)
    x = rng.random((samples, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=(samples,)).astype("int64")
    data = (tf.data.Dataset.from_tensor_slices((x, y))
            .batch(batch, drop_remainder=True).repeat().prefetch(2))
    teacher = step_time.build_teacher()
    if config == "student":
        model = step_time.make_student_model(teacher, xla=False)
    elif config in ("kd", "kd+feat"):
        model = step_time.make_kd(teacher, xla=False, feature=config == "kd+feat")
    elif config in ("keras", "keras+feat"):
        model = step_time.make_keras(teacher, xla=False, feature=config == "keras+feat")
    else:
        raise ValueError(f"Unknown configuration {config!r}; choose from {CONFIGS}.")
    before_fit = rss_mib()
    started = time.perf_counter()
    history = model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0).history
    seconds = time.perf_counter() - started
    loss = float(history["loss"][-1])
    return {
        "config": config,
        "steps": steps,
        "batch": batch,
        "python_start_mib": after_import_start,
        "after_import_mib": after_import,
        "before_fit_mib": before_fit,
        "after_fit_mib": rss_mib(),
        "peak_mib": peak_rss_mib(),
        "fit_seconds": seconds,
        "loss": loss,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }


# ---------------------------------------------------------------------------
# The parent: one fresh process per configuration and round.
def run_child(config, steps, samples, batch, timeout=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, os.path.abspath(__file__), "--child", config,
               "--steps", str(steps), "--samples", str(samples), "--batch", str(batch)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{config} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(configs=CONFIGS, repeats=3, steps=100, samples=4096, batch=128, seed=0,
        log=print, timeout=None):
    """Every configuration `repeats` times, each in a fresh process; returns
    {config: [child report, ...]}."""
    order = random.Random(seed)
    reports = {config: [] for config in configs}
    for round_index in range(repeats):
        todo = list(configs)
        order.shuffle(todo)
        for config in todo:
            report = run_child(config, steps, samples, batch, timeout=timeout)
            reports[config].append(report)
            log(f"round {round_index + 1}/{repeats} {config:11s} peak {report['peak_mib']:7.1f} MiB, "
                f"before fit {report['before_fit_mib']:7.1f} MiB, fit {report['fit_seconds']:.1f} s")
    return reports


def _median(values):
    return statistics.median(values)


def summarize(reports):
    """Medians per configuration and the ratios of the comparisons."""
    rows = {}
    for config, runs in reports.items():
        rows[config] = {
            "peak": _median([r["peak_mib"] for r in runs]),
            "peak_range": (min(r["peak_mib"] for r in runs), max(r["peak_mib"] for r in runs)),
            "before_fit": _median([r["before_fit_mib"] for r in runs]),
            "increment": _median([r["peak_mib"] - r["before_fit_mib"] for r in runs]),
            "after_import": _median([r["after_import_mib"] for r in runs]),
        }
    ratios = {}
    for ours, theirs in COMPARISONS:
        if ours in rows and theirs in rows:
            ratios[f"{ours} / {theirs}"] = {
                "peak": rows[ours]["peak"] / rows[theirs]["peak"],
                "increment": rows[ours]["increment"] / max(rows[theirs]["increment"], 1e-9),
            }
    return rows, ratios


def table(rows, ratios):
    lines = [
        "| configuration | peak RSS, median (MiB) | min–max | RSS before `fit` | training increment (peak − before fit) |",
        "|---|---:|---:|---:|---:|",
    ]
    for config, row in rows.items():
        low, high = row["peak_range"]
        lines.append(f"| {config} | {row['peak']:.1f} | {low:.1f}–{high:.1f} | "
                     f"{row['before_fit']:.1f} | {row['increment']:.1f} |")
    lines += ["", "| ratio | peak | training increment | target (peak) |", "|---|---:|---:|---|"]
    for name, ratio in ratios.items():
        verdict = "met" if ratio["peak"] <= TARGET else "NOT met"
        lines.append(f"| {name} | {ratio['peak']:.3f} | {ratio['increment']:.3f} | "
                     f"≤ {TARGET} ({verdict}) |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=CONFIGS, help="run one configuration here, print JSON")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=3, help="processes per configuration")
    parser.add_argument("--steps", type=int, default=100, help="train steps per process")
    parser.add_argument("--samples", type=int, default=4096, help="synthetic samples (reference: 4096)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (reference: 128)")
    parser.add_argument("--json", help="also write the raw reports here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        print(json.dumps(child(args.child, args.steps, args.samples, args.batch)))
        return 0
    started = time.time()
    reports = run(args.configs, args.repeats, args.steps, args.samples, args.batch)
    rows, ratios = summarize(reports)
    print(table(rows, ratios))
    first = next(iter(reports.values()))[0]
    print(f"\n{args.repeats} processes per configuration, {args.steps} steps at batch "
          f"{args.batch}; TensorFlow {first['versions']['tensorflow']}, Keras "
          f"{first['versions']['keras']}; {time.time() - started:.0f} s in all.")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(reports, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
