"""Renders the results tables of the README and the docs from the JSON the
runs wrote, so that no number in them is copied by hand.

A generated table sits between two markers in a Markdown file:

    <!-- gen:NAME -->
    ...the table...
    <!-- /gen:NAME -->

`python docs/gen_tables.py` rewrites every such block in README.md and
docs/**/*.md from the JSON; `python docs/gen_tables.py --check` exits with
status 1 and names the stale blocks instead (tests/docs/test_tables.py runs
the check). The bench's own table is `keras_kd.tools.bench.report.format_table`,
the one `keras-kd bench` writes into its report.
"""

import argparse
import glob
import json
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
BENCH = "fmnist-cnn-e15"
HEADLINE_METHODS = (("dist", "DIST"), ("kd_ls", "KD+LS"))
BLOCK = re.compile(r"(<!-- gen:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /gen:(?P=name) -->)",
                   re.S)


def _json(*parts):
    with open(os.path.join(DOCS, *parts)) as handle:
        return json.load(handle)


def bench(name=BENCH):
    """`summary.json` of a bench run under docs/bench/."""
    return _json("bench", name, "summary.json")


def _mean_sd(values, ddof=0):
    values = np.asarray(values, float)
    return values.mean(), values.std(ddof=ddof)


def _per_seed(diffs):
    return ", ".join(f"{d:+.2f}" for d in diffs)


def bench_table(name=BENCH):
    """The full table of a bench run, as `keras-kd bench` writes it."""
    from keras_kd.tools.bench.report import format_table

    data = bench(name)
    return format_table(data["teacher"], data["summary"])


def _bench_rows():
    data = bench()
    rows = {s["method"]: s for s in data["summary"]}
    scratch = rows["scratch"]
    out = [f"| Fashion-MNIST, scratch student (labels only) | {scratch['mean']:.2f} ± "
           f"{scratch['std']:.2f} | |"]
    for method, label in HEADLINE_METHODS:
        s = rows[method]
        diffs = [d for _, d in s["paired"]]
        out.append(f"| Fashion-MNIST, `recipe(\"{method}\")` ({label}) | {s['mean']:.2f} ± "
                   f"{s['std']:.2f} | **{s['paired_mean']:+.2f} ± {s['paired_sd']:.2f}** "
                   f"({_per_seed(diffs)}) |")
    return out


def migration():
    return _json("migration", "digits.json")


def _migration_rows(arms):
    data = migration()
    acc = {arm: 100 * np.asarray(v) for arm, v in data["accuracy"].items()}
    base = acc["keras.distillation"]
    out = []
    for arm, label in arms:
        mean, sd = _mean_sd(acc[arm])
        spread = f"{mean:.1f} ± {sd:.1f} ({acc[arm].min():.1f}–{acc[arm].max():.1f})"
        if arm == "keras.distillation":
            delta = ""
        else:
            diffs = acc[arm] - base
            d_mean, d_sd = _mean_sd(diffs, ddof=1)
            per_seed = ", ".join(f"{d:+.1f}" for d in diffs)
            delta = f"{d_mean:+.1f} ± {d_sd:.1f} ({per_seed})"
        out.append(f"| {label} | {spread} | {delta} |")
    return out


def headline():
    """The README's table: the bench's scratch student against its best logit
    recipes, and keras.distillation's defaults against the migrated script."""
    data, mig = bench(), migration()
    settings, m = data["settings"], mig["settings"]
    lines = [
        "| run (test split) | test accuracy %, mean ± sd over seeds | paired Δ, mean ± sample sd "
        "(per seed) |",
        "|---|---:|---|",
    ]
    lines += _bench_rows()
    lines += _migration_rows((
        ("keras.distillation", "digits, `keras.distillation` with its defaults"),
        ("keras_kd + from_keras", "digits, the same script with `keras_kd.losses.from_keras`"),
    ))
    teacher = data["teacher"]
    seeds = len(data["summary"][0]["seeds"])
    lines += [
        "",
        f"Fashion-MNIST: teacher {teacher['accuracy'] * 100:.2f}% ({teacher['params']:,} "
        f"parameters), student {data['summary'][0]['params']:,} parameters, "
        f"{settings['train_size']:,} training images, {settings['epochs']} epochs, "
        f"{seeds} seeds, Δ against scratch for the same seed. Digits: the shipped teacher "
        f"({mig['teacher_accuracy'] * 100:.2f}%), the {m['student']} MLP, {m['epochs']} "
        f"epochs, {len(m['seeds'])} seeds (mean ± sd and range), Δ against "
        "`keras.distillation` for the same seed.",
    ]
    return "\n".join(lines)


def migration_table():
    """Every arm of docs/migration/digits.py."""
    lines = [
        "| script | test accuracy %, mean ± sd (range) | Δ vs keras.distillation, paired: "
        "mean ± sample sd (per seed) |",
        "|---|---:|---|",
    ]
    lines += _migration_rows((
        ("keras.distillation", "`keras.distillation`, its defaults"),
        ("keras.distillation, student loss from_logits=True",
         "`keras.distillation`, student loss `SparseCategoricalCrossentropy(from_logits=True)`"),
        ("keras.distillation, loss=KLDivergence()",
         "`keras.distillation`, `LogitsDistillation(loss=keras.losses.KLDivergence())`"),
        ("keras_kd + from_keras", "keras-kd, `from_keras` (the defaults as they are)"),
    ))
    return "\n".join(lines)


def segmentation_table():
    """docs/segmentation/fashion_mosaics.json: pixel accuracy and mIoU per
    method, and the paired differences against scratch."""
    data = _json("segmentation", "fashion_mosaics.json")
    results = data["results"]
    seeds = sorted(results["scratch"], key=int)
    labels = {"scratch": "scratch", "kd": "per-pixel KD", "cwd": "CWD"}

    def scores(method, key):
        return 100 * np.array([results[method][s][key] for s in seeds])

    lines = [
        "| method | pixel accuracy % | mIoU % | Δ pixel accuracy vs scratch (per seed) | "
        "Δ mIoU vs scratch (per seed) |",
        "|---|---|---|---|---|",
    ]
    for method in results:
        cells = []
        for key in ("pixel_accuracy", "miou"):
            mean, sd = _mean_sd(scores(method, key), ddof=1)
            cells.append(f"{mean:.2f} ± {sd:.2f}")
        for key in ("pixel_accuracy", "miou"):
            if method == "scratch":
                cells.append("—")
            else:
                diffs = scores(method, key) - scores("scratch", key)
                cells.append(f"{diffs.mean():+.2f} ({_per_seed(diffs)})")
        lines.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


GENERATORS = {
    "headline": headline,
    "bench-" + BENCH: bench_table,
    "migration-digits": migration_table,
    "segmentation": segmentation_table,
}


def files():
    """README.md and every Markdown page under docs/."""
    return [os.path.join(ROOT, "README.md")] + sorted(
        glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True))


def render(text, cache=None):
    """`text` with every generated block rewritten; unknown names raise."""
    cache = {} if cache is None else cache

    def block(match):
        name = match.group("name")
        if name not in GENERATORS:
            raise KeyError(f"unknown generated table {name!r}; known: {sorted(GENERATORS)}")
        if name not in cache:
            cache[name] = GENERATORS[name]()
        return match.group(1) + cache[name] + "\n" + match.group(4)

    return BLOCK.sub(block, text)


def blocks(text):
    """The names of the generated blocks in `text`."""
    return [m.group("name") for m in BLOCK.finditer(text)]


def stale():
    """{path: rendered text} for every file whose blocks differ from the JSON."""
    cache, out = {}, {}
    for path in files():
        with open(path) as handle:
            text = handle.read()
        new = render(text, cache)
        if new != text:
            out[path] = new
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only report stale tables (exit status 1), write nothing")
    args = parser.parse_args(argv)
    changed = stale()
    for path, text in changed.items():
        name = os.path.relpath(path, ROOT)
        if args.check:
            print(f"stale generated table(s) in {name}; run python docs/gen_tables.py")
        else:
            with open(path, "w") as handle:
                handle.write(text)
            print(f"rewrote {name}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
