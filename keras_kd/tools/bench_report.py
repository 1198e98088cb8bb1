"""The `keras-kd bench` report: a markdown table and a PNG plot.

Rows are grouped by (method, student); accuracy is mean ± population std
over seeds; Δ is against the scratch run of the same student with the same
seeds. A method "does not beat scratch" when its mean is not above the
scratch mean, and is "within noise" when its gain is no larger than the
larger of the two standard deviations.
"""

import datetime
import os

import numpy as np


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
        if s["method"] == "scratch" or base is None:
            s["verdict"] = ""
        elif s["delta"] <= 0:
            s["verdict"] = "does not beat scratch"
        elif s["delta"] <= max(s["std"], base["std"]):
            s["verdict"] = "within noise"
        else:
            s["verdict"] = "beats scratch"
    return summary


def format_table(teacher, summary):
    lines = [
        "| method | student (params) | test accuracy % | Δ vs scratch | latency ms / 256 | "
        "train step ms | step ÷ scratch step | verdict | per seed |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
        f"| teacher | {teacher['student']} ({teacher['params']:,}) | "
        f"{teacher['accuracy'] * 100:.2f} | | {teacher['latency_ms']:.2f} | | | | |",
    ]
    for s in summary:
        per_seed = ", ".join(f"{a:.2f}" for a in s["accuracies"])
        delta = "" if s["method"] == "scratch" else f"{s['delta']:+.2f}"
        ratio = "1.00" if s["method"] == "scratch" else f"{s['step_ratio']:.2f}"
        lines.append(
            f"| {s['method']} | {s['student']} ({s['params']:,}) | "
            f"{s['mean']:.2f} ± {s['std']:.2f} | {delta} | {s['latency_ms']:.2f} | "
            f"{s['step_ms']:.2f} | {ratio} | {s['verdict']} | {per_seed} |"
        )
    return "\n".join(lines)


def plot(path, teacher, summary, title):
    """Accuracy vs parameters, latency and training-step time, std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 4.8), sharey=True)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(2, len(summary))))
    for axis, x in ((left, teacher["params"]), (middle, teacher["latency_ms"])):
        axis.scatter([x], [teacher["accuracy"] * 100], marker="*", s=160, color="black",
                     label="teacher")
    for color, s in zip(colors, summary):
        label = f"{s['method']} ({s['student']})"
        left.errorbar(s["params"], s["mean"], yerr=s["std"], fmt="o", capsize=4,
                      color=color, label=label, alpha=0.8)
        middle.errorbar(s["latency_ms"], s["mean"], yerr=s["std"], fmt="o", capsize=4,
                        color=color, alpha=0.8)
        right.errorbar(s["step_ms"], s["mean"], yerr=s["std"], fmt="o", capsize=4,
                       color=color, alpha=0.8)
        right.annotate(s["method"], (s["step_ms"], s["mean"]), textcoords="offset points",
                       xytext=(5, 4), fontsize=8)
    left.set_xscale("log")
    left.set_xlabel("parameters (log scale)")
    left.set_ylabel("test accuracy % (mean ± std over seeds)")
    left.set_title("accuracy vs size")
    left.legend(fontsize=7, loc="lower right")
    middle.set_xscale("log")
    middle.set_xlabel("inference latency, batch of 256 (ms, log scale)")
    middle.set_title("accuracy vs latency")
    right.set_xlabel("training step (ms, median)")
    right.set_title("accuracy vs training cost (students)")
    for axis in (left, middle, right):
        axis.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(output_dir, settings, teacher, rows, pair, command=""):
    """Writes `report.md`, `report.png` and `summary.json`; returns their paths."""
    from keras_kd.tools.bench import environment, _write_json

    summary = summarize(rows)
    table = format_table(teacher, summary)
    png = plot(os.path.join(output_dir, "report.png"), teacher, summary,
               f"keras-kd bench: {settings['pair']} ({settings['dataset']})")
    size = settings["train_size"] or "all"
    not_helping = [s["method"] for s in summary if s["verdict"] == "does not beat scratch"]
    noise = [s["method"] for s in summary if s["verdict"] == "within noise"]
    lines = [
        f"# keras-kd bench: {settings['pair']}",
        "",
        f"- pair: {pair.description}",
        f"- data: {settings['dataset']} (students trained on {size} training images; "
        "accuracy on the full test split)",
        f"- training: Adam {settings['learning_rate']:g} with cosine decay to 0, batch {settings['batch_size']}, "
        f"{settings['epochs']} epochs, T = {settings['temperature']:g} for KD/DKD; recipes from "
        "`keras_kd.zoo.recipes.recipe`",
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
        "Accuracy is mean ± std over seeds; Δ against the scratch run of the same student "
        "and seeds. Latency: median forward of a batch of 256 test images "
        "(`keras_kd.tools.timing.latency_ms`) over every run of that student. Train step: median epoch wall time ÷ steps, "
        "first epoch left out.",
        "",
        f"- does not beat scratch: {', '.join(not_helping) or 'none'}",
        f"- gain within noise (Δ ≤ larger std): {', '.join(noise) or 'none'}",
        "",
        "![accuracy vs parameters and training cost](report.png)",
        "",
    ]
    markdown = os.path.join(output_dir, "report.md")
    with open(markdown, "w") as handle:
        handle.write("\n".join(lines))
    _write_json(os.path.join(output_dir, "summary.json"),
                {"settings": settings, "teacher": teacher, "summary": summary})
    return {"markdown": markdown, "plot": png, "table": table, "summary": summary}
