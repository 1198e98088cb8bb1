"""The `keras-kd bench` report: a markdown table and a PNG plot.

Rows are grouped by (method, student); accuracy is mean ± population std
over seeds. Each method is compared with the scratch run of the same
student *seed by seed* (same initialisation and data order): the paired
differences d_k = acc(method, seed k) − acc(scratch, seed k), their mean,
sample standard deviation and a 95% t-interval of the mean. The verdict
reads the interval: "helps" when it lies above 0, "hurts" when below 0,
"no clear difference" when it contains 0 (and "one seed: no spread" with a
single paired seed).

The plot's first panel answers "which methods help": each method's mean
paired difference with its 95% interval and the per-seed differences,
sorted, with a zero line. Accuracy against parameters and latency is drawn
only when the benchmark has students of different sizes.
"""

import datetime
import os

import numpy as np

from keras_kd.atomic import write_json
from keras_kd.tools.bench.results import environment


def summarize(rows):
    """One summary dict per (method, student), in first-seen order."""
    groups = {}
    for row in rows:
        groups.setdefault((row["method"], row["student"]), []).append(row)
    summary = []
    for (method, student), members in groups.items():
        acc = np.array([r["accuracy"] * 100 for r in members])
        summary.append({
            "method": method,
            "student": student,
            "seeds": [r["seed"] for r in members],
            "accuracies": acc.tolist(),
            "mean": float(acc.mean()),
            "std": float(acc.std()),
            "params": members[0]["params"],
            # Latency is the architecture's: the median over every run of this
            # student, whatever the method, so a busy moment in one run does not
            # make one method's identical network look slower.
            "latency_ms": float(np.median([r["latency_ms"] for r in rows
                                           if r["student"] == student])),
            "step_ms": float(np.median([r["step_ms"] for r in members])),
        })
    scratch = {s["student"]: s for s in summary if s["method"] == "scratch"}
    for s in summary:
        base = scratch.get(s["student"])
        s["delta"] = s["mean"] - base["mean"] if base else float("nan")
        s["step_ratio"] = s["step_ms"] / base["step_ms"] if base else float("nan")
        s["weights"] = next((r.get("weights") for r in rows if r["method"] == s["method"]
                             and r["student"] == s["student"] and r.get("weights")), None)
        s.update(paired(s, base) if base is not None and s["method"] != "scratch" else
                 {"paired": [], "paired_mean": float("nan"), "paired_sd": float("nan"),
                  "ci95": (float("nan"), float("nan")), "verdict": ""})
    return summary


# Two-sided 95% Student-t quantiles by degrees of freedom (1..30; above: 1.96).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t95(dof):
    """The two-sided 95% quantile of Student's t with `dof` degrees of freedom."""
    return _T95[dof - 1] if 1 <= dof <= len(_T95) else 1.96


def paired(method, scratch):
    """Per-seed differences against scratch (seeds both have), mean, sd, 95% CI, verdict."""
    base = dict(zip(scratch["seeds"], scratch["accuracies"]))
    diffs = [(seed, acc - base[seed]) for seed, acc in zip(method["seeds"], method["accuracies"])
             if seed in base]
    values = np.array([d for _, d in diffs], float)
    out = {"paired": diffs, "paired_mean": float(values.mean()) if len(values) else float("nan")}
    if len(values) < 2:
        out.update(paired_sd=float("nan"), ci95=(float("nan"), float("nan")),
                   verdict="one seed: no spread" if len(values) else "no paired seed")
        return out
    sd = float(values.std(ddof=1))
    half = t95(len(values) - 1) * sd / np.sqrt(len(values))
    low, high = out["paired_mean"] - half, out["paired_mean"] + half
    verdict = "helps" if low > 0 else "hurts" if high < 0 else "no clear difference"
    out.update(paired_sd=sd, ci95=(float(low), float(high)), verdict=verdict)
    return out


def _weights_text(weights):
    if not weights:
        return ""
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in weights.items())


def format_table(teacher, summary):
    lines = [
        "| method | student (params) | test accuracy % | paired Δ vs scratch (mean ± sd) | "
        "95% CI of Δ | verdict | Δ per seed | effective weights | latency ms / 256 | "
        "train step ms | step ÷ scratch step | accuracy per seed |",
        "|---|---|---:|---:|---|---|---|---|---:|---:|---:|---|",
        f"| teacher | {teacher['student']} ({teacher['params']:,}) | "
        f"{teacher['accuracy'] * 100:.2f} | | | | | | {teacher['latency_ms']:.2f} | | | |",
    ]
    ordered = [s for s in summary if s["method"] == "scratch"] + sorted(
        (s for s in summary if s["method"] != "scratch"),
        key=lambda s: -s["paired_mean"] if np.isfinite(s["paired_mean"]) else np.inf)
    for s in ordered:
        per_seed = ", ".join(f"{a:.2f}" for a in s["accuracies"])
        is_base = s["method"] == "scratch"
        delta = "" if is_base else f"{s['paired_mean']:+.2f} ± {s['paired_sd']:.2f}"
        ci = "" if is_base or not np.isfinite(s["ci95"][0]) else (
            f"[{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}]")
        diffs = "" if is_base else ", ".join(f"{d:+.2f}" for _, d in s["paired"])
        ratio = "1.00" if is_base else f"{s['step_ratio']:.2f}"
        lines.append(
            f"| {s['method']} | {s['student']} ({s['params']:,}) | "
            f"{s['mean']:.2f} ± {s['std']:.2f} | {delta} | {ci} | {s['verdict']} | {diffs} | "
            f"{_weights_text(s.get('weights'))} | {s['latency_ms']:.2f} | "
            f"{s['step_ms']:.2f} | {ratio} | {per_seed} |"
        )
    return "\n".join(lines)


def plot(path, teacher, summary, title):
    """First panel: paired Δ vs scratch per method (95% CI, per-seed dots,
    sorted, zero line); then accuracy vs training-step time; accuracy vs
    parameters and latency only when the students differ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted((s for s in summary if s["method"] != "scratch" and s["paired"]),
                     key=lambda s: s["paired_mean"])
    sizes = len({s["student"] for s in summary}) > 1
    panels = 4 if sizes else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 0.4 * len(methods) + 4.2))
    helps, steps = axes[0], axes[1]
    colors = {"helps": "tab:green", "hurts": "tab:red"}
    for y, s in enumerate(methods):
        color = colors.get(s["verdict"], "tab:gray")
        low, high = s["ci95"]
        if np.isfinite(low):
            helps.errorbar(s["paired_mean"], y, xerr=[[s["paired_mean"] - low],
                                                     [high - s["paired_mean"]]],
                           fmt="o", capsize=4, color=color)
        else:
            helps.plot(s["paired_mean"], y, "o", color=color)
        helps.scatter([d for _, d in s["paired"]], [y] * len(s["paired"]), s=12,
                      color="black", alpha=0.5, zorder=3)
    helps.axvline(0.0, color="black", linewidth=1)
    helps.set_yticks(range(len(methods)))
    helps.set_yticklabels([f"{s['method']} ({s['student']})" if sizes else s["method"]
                           for s in methods])
    helps.set_xlabel("test accuracy − scratch, same seed (points)")
    helps.set_title("which methods help: paired Δ, 95% CI, dots = seeds")
    helps.grid(alpha=0.3, axis="x")

    palette = plt.get_cmap("tab20")(np.linspace(0, 1, max(2, len(summary))))
    for color, s in zip(palette, summary):
        steps.errorbar(s["step_ms"], s["mean"], yerr=s["std"], fmt="o", capsize=4,
                       color=color, alpha=0.8)
        steps.annotate(s["method"], (s["step_ms"], s["mean"]), textcoords="offset points",
                       xytext=(5, 4), fontsize=8)
    steps.set_xlabel("training step (ms, median)")
    steps.set_ylabel("test accuracy % (mean ± std over seeds)")
    steps.set_title("accuracy vs training cost")
    steps.grid(alpha=0.3)
    if sizes:
        left, middle = axes[2], axes[3]
        for axis, x in ((left, teacher["params"]), (middle, teacher["latency_ms"])):
            axis.scatter([x], [teacher["accuracy"] * 100], marker="*", s=160, color="black",
                         label="teacher")
        for color, s in zip(palette, summary):
            label = f"{s['method']} ({s['student']})"
            left.errorbar(s["params"], s["mean"], yerr=s["std"], fmt="o", capsize=4,
                          color=color, label=label, alpha=0.8)
            middle.errorbar(s["latency_ms"], s["mean"], yerr=s["std"], fmt="o", capsize=4,
                            color=color, alpha=0.8)
        left.set_xscale("log")
        left.set_xlabel("parameters (log scale)")
        left.set_title("accuracy vs size")
        left.legend(fontsize=7, loc="lower right")
        middle.set_xscale("log")
        middle.set_xlabel("inference latency, batch of 256 (ms, log scale)")
        middle.set_title("accuracy vs latency")
        for axis in (left, middle):
            axis.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(output_dir, settings, teacher, rows, pair, command=""):
    """Writes `report.md`, `report.png` and `summary.json`; returns their paths."""

    summary = summarize(rows)
    table = format_table(teacher, summary)
    png = plot(os.path.join(output_dir, "report.png"), teacher, summary,
               f"keras-kd bench: {settings['pair']} ({settings['dataset']})")
    size = settings["train_size"] or "all"
    by_verdict = {v: [s["method"] for s in summary if s["verdict"] == v]
                  for v in ("helps", "hurts", "no clear difference")}
    lines = [
        f"# keras-kd bench: {settings['pair']}",
        "",
        f"- pair: {pair.description}",
        f"- data: {settings['dataset']} (students trained on {size} training images; "
        "accuracy on the full test split)",
        f"- training: Adam {settings['learning_rate']:g} with cosine decay to 0, batch {settings['batch_size']}, "
        f"{settings['epochs']} epochs, T = {settings['temperature']:g} for KD (the other "
        "recipes use their own T); recipes from `keras_kd.zoo.recipes.recipe`, whose "
        "`epochs` the runs fit (FSP adds its initialisation stage ahead of them)",
        f"- teacher: `{teacher['file']}`",
        f"- machine: {environment()}",
        f"- finished: {datetime.datetime.now().isoformat(timespec='seconds')}",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    lines += [
        "",
        table,
        "",
        "Accuracy is mean ± std over seeds. Δ is paired: each method's accuracy minus the "
        "scratch student's accuracy for the same seed (same initialisation and data order); "
        "mean ± sample sd over seeds, 95% t-interval of the mean. Verdict: helps / hurts when "
        "the interval excludes 0, no clear difference when it contains 0. Effective weights: "
        "what `keras_kd.zoo.recipes.recipe` chose for this run. Latency: median forward of a "
        "batch of 256 test images (`keras_kd.tools.timing.latency_ms`) over every run of that "
        "student. Train step: median epoch wall time ÷ steps, first epoch left out.",
        "",
        f"- helps: {', '.join(by_verdict['helps']) or 'none'}",
        f"- hurts: {', '.join(by_verdict['hurts']) or 'none'}",
        f"- no clear difference: {', '.join(by_verdict['no clear difference']) or 'none'}",
        "",
        "![which methods help: paired differences against scratch](report.png)",
        "",
    ]
    markdown = os.path.join(output_dir, "report.md")
    with open(markdown, "w") as handle:
        handle.write("\n".join(lines))
    write_json(os.path.join(output_dir, "summary.json"),
               {"settings": settings, "teacher": teacher, "summary": summary}, indent=1)
    return {"markdown": markdown, "plot": png, "table": table, "summary": summary}
