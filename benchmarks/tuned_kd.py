"""Tuned KD against the default `kd` recipe, with `keras-kd bench`'s protocol.

    # 1. the search, on a validation split carved from the 15k training subset
    PYTHONPATH=. nice -n 10 python -m keras_kd.tools.cli tune --method kd \\
        --dataset fashion_mnist --teacher saved_models/fashion_mnist_teacher.keras \\
        --student fmnist_student --train-size 15000 --val-fraction 0.1 \\
        --epochs 5 --trials 8 --algorithm random --output-dir tune_runs/fmnist_kd
    # 2. the best setting, trained as the bench trains (15 epochs, seeds 0,1,2)
    PYTHONPATH=. nice -n 10 python benchmarks/tuned_kd.py \\
        --config tune_runs/fmnist_kd/best.yaml --seeds 0,1,2 --epochs 15 \\
        --bench-dir /work/benchout/fmnist-cnn-e15 --out results/tuned_kd/fmnist.json

Step 2 reads the best setting from the run config the search wrote (its
KD term's temperature, weight and logit standardization, and the
hard-label weight), and trains it with `keras_kd.tools.bench.train.train_one`
exactly as `keras-kd bench --pair fmnist-cnn --epochs 15` trains the `kd`
recipe: the same fixed stratified 15,000-image subset (all of it,
validation part included), batch 64, Adam 1e-3 with cosine decay, the
teacher's logits from a cache, the run's seed for the initialisation and
the shuffle; only the recipe's overrides differ. The final accuracy is on
the test split, read once per run. The default `kd` rows come from the
bench's results (`--bench-dir`), or are trained here with the same
protocol when that folder has none for a seed. Results are saved after
every run; a re-run resumes.
"""

import argparse
import json
import os
import tempfile

import keras
import numpy as np
import yaml

from keras_kd.tools.bench import command as bench
from keras_kd.tools.bench.train import logit_cache, train_one

PAIR = "fmnist-cnn"


def overrides_from_config(path):
    """The `kd` recipe overrides of a `keras-kd tune --method kd` run config."""
    with open(path) as handle:
        cfg = yaml.safe_load(handle)
    (term,) = cfg["terms"]
    if term["type"] != "KD":
        raise ValueError(f"{path} holds a {term['type']} term, not KD.")
    return {"temperature": float(term["temperature"]), "weight": float(term["weight"]),
            "logit_standardization": bool(term.get("logit_standardization", False)),
            "student_loss_weight": float(cfg["student_loss_weight"])}


def bench_row(bench_dir, seed):
    path = bench.result_path(bench_dir, "kd", bench.PAIRS[PAIR].student, seed)
    if bench_dir and os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="best.yaml of keras-kd tune --method kd")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--bench-dir", default=None)
    parser.add_argument("--out", default="results/tuned_kd/fmnist.json")
    args = parser.parse_args(argv)
    overrides = overrides_from_config(args.config)
    pair = bench.PAIRS[PAIR]
    settings = {"epochs": args.epochs, "batch_size": pair.batch_size, "learning_rate": 1e-3,
                "temperature": 4.0}
    results = {"overrides": overrides, "settings": settings, "runs": {}}
    if os.path.exists(args.out):
        with open(args.out) as handle:
            results["runs"] = json.load(handle)["runs"]
    data = bench.load_data(pair, pair.train_size)
    teacher = keras.saving.load_model(bench.find_teacher(pair, tempfile.gettempdir()))
    cache = None
    logs = tempfile.mkdtemp(prefix="tuned_kd_")
    seeds = [int(s) for s in args.seeds.split(",")]
    # Tuned runs first: the bench's default rows may appear meanwhile.
    for label, extra in (("tuned", overrides), ("default", None)):
        for seed in seeds:
            key = f"{label} | {seed}"
            if key in results["runs"]:
                continue
            row = bench_row(args.bench_dir, seed) if label == "default" else None
            source = "bench results" if row is not None else "trained here"
            if row is None:
                if cache is None:
                    cache = logit_cache(teacher, *data[0])
                run_settings, run_overrides = dict(settings), dict(extra or {})
                # train_one gives T to the recipe as `temperature=` (the bench's --temperature).
                run_settings["temperature"] = run_overrides.pop("temperature",
                                                                settings["temperature"])
                row = train_one("kd", pair.student, seed, teacher, pair, data, run_settings,
                                logs, 1, overrides=run_overrides, cache=cache)
            results["runs"][key] = {"label": label, "seed": seed, "accuracy": row["accuracy"],
                                    "weights": row["weights"], "source": source,
                                    "epochs": row["epochs"]}
            print(f"{key}: {row['accuracy'] * 100:.2f}% test ({source})", flush=True)
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as handle:
                json.dump(results, handle, indent=1)
    print(table(results, seeds))
    return 0


def table(results, seeds):
    runs = results["runs"]
    lines = ["| seed | default kd % | tuned kd % | tuned − default |", "|---|---|---|---|"]
    diffs = []
    for seed in seeds:
        d, t = runs.get(f"default | {seed}"), runs.get(f"tuned | {seed}")
        if d is None or t is None:
            continue
        diffs.append((t["accuracy"] - d["accuracy"]) * 100)
        lines.append(f"| {seed} | {d['accuracy'] * 100:.2f} | {t['accuracy'] * 100:.2f} | "
                     f"{diffs[-1]:+.2f} |")
    if len(diffs) > 1:
        lines.append(f"| mean ± sd | | | {np.mean(diffs):+.2f} ± {np.std(diffs, ddof=1):.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
