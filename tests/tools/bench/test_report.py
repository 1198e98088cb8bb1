"""The bench report: summary statistics against numpy, and the paired verdict
read from the interval, not the means."""

import numpy as np
import pytest

from keras_kd.tools.bench import report as bench_report


def test_summary_statistics_match_numpy():
    rows = [
        {"method": m, "student": "s", "seed": seed, "accuracy": acc, "params": 10,
         "latency_ms": 1.0, "step_ms": step}
        for m, seed, acc, step in [
            ("scratch", 0, 0.90, 2.0), ("scratch", 1, 0.92, 4.0),
            ("kd", 0, 0.95, 3.0), ("kd", 1, 0.97, 5.0),
            ("at", 0, 0.80, 6.0), ("at", 1, 0.90, 6.0),
        ]
    ]
    by = {s["method"]: s for s in bench_report.summarize(rows)}
    assert by["kd"]["mean"] == pytest.approx(96.0)
    assert by["kd"]["std"] == pytest.approx(np.std([95.0, 97.0]))
    assert by["kd"]["delta"] == pytest.approx(96.0 - 91.0)
    assert by["kd"]["step_ratio"] == pytest.approx(4.0 / 3.0)
    assert by["kd"]["verdict"] == "helps"  # +5, +5: no spread
    # at: paired Δ −10, −2 → mean −6, sd 5.657, 95% CI −6 ± 12.706·5.657/√2
    assert [d for _, d in by["at"]["paired"]] == pytest.approx([-10.0, -2.0])
    assert by["at"]["paired_sd"] == pytest.approx(np.std([-10.0, -2.0], ddof=1))
    half = 12.706 * np.std([-10.0, -2.0], ddof=1) / np.sqrt(2)
    assert by["at"]["ci95"] == pytest.approx((-6.0 - half, -6.0 + half))
    assert by["at"]["verdict"] == "no clear difference"


def test_paired_verdict_reads_the_interval_not_the_means():
    # scratch varies a lot across seeds, the method is 0.5 above it on every seed:
    # unpaired stds would call it noise, the paired interval says it helps.
    scratch = {"seeds": [0, 1, 2], "accuracies": [80.0, 85.0, 90.0]}
    method = {"seeds": [0, 1, 2], "accuracies": [80.5, 85.6, 90.4]}
    out = bench_report.paired(method, scratch)
    assert out["verdict"] == "helps" and out["ci95"][0] > 0
    worse = {"seeds": [0, 1, 2], "accuracies": [79.0, 84.2, 89.1]}
    assert bench_report.paired(worse, scratch)["verdict"] == "hurts"
    one = {"seeds": [1, 5], "accuracies": [86.0, 99.0]}
    assert bench_report.paired(one, scratch)["verdict"] == "one seed: no spread"
