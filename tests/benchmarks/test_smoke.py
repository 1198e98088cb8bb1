"""Smoke tests of the benchmarks: perf_matrix.py on one tiny configuration,
the memory and soak tools, and every script importing.

Checks only that the rows are produced and finite, never timing values.
"""

import math
import os
import subprocess
import sys

from tests.helpers.paths import ROOT

BENCHMARKS = os.path.join(ROOT, "benchmarks")


def test_perf_matrix_produces_finite_rows():
    sys.path.insert(0, BENCHMARKS)
    try:
        import perf_matrix
    finally:
        sys.path.remove(BENCHMARKS)
    result = perf_matrix.run(["graph-f32"], ["kd"], rounds=1, steps=1, cached=True,
                             keras_rows=False, log=lambda message: None)
    assert result["failures"] == {}
    ratios = result["ratios"]
    assert set(ratios) == {"graph-f32/kd", "graph-f32/kd:cached"}
    assert set(ratios["graph-f32/kd:cached"]) == {"ratio", "ratio_live"}
    for series in ratios.values():
        for values in series.values():
            assert len(values) == 1 and all(math.isfinite(v) and v > 0 for v in values)
    table = perf_matrix.tables(result["ms_per_step"], ratios, result["failures"],
                               result["configs"])
    assert "| kd | " in table and "kd, cached teacher ÷ live floor" in table


def _import_benchmark(name):
    """benchmarks/<name>.py as a module, sys.path left as it was."""
    saved = list(sys.path)
    sys.path.insert(0, BENCHMARKS)
    try:
        return __import__(name)
    finally:
        sys.path[:] = saved


def test_memory_runs_a_configuration_in_its_own_process():
    memory = _import_benchmark("memory")
    reports = memory.run(["kd"], repeats=1, steps=1, samples=16, batch=8, log=lambda m: None)
    (report,) = reports["kd"]
    assert report["config"] == "kd" and report["steps"] == 1
    # A separate process: TensorFlow and the models cost it hundreds of MiB.
    assert report["peak_mib"] >= report["after_fit_mib"] >= report["python_start_mib"] > 0
    assert report["before_fit_mib"] - report["python_start_mib"] > 100
    assert math.isfinite(report["loss"])


def test_memory_summary_and_table():
    memory = _import_benchmark("memory")
    fake = {config: [{"peak_mib": peak, "before_fit_mib": 800.0, "after_import_mib": 700.0}]
            for config, peak in (("kd", 990.0), ("keras", 1000.0), ("kd+feat", 1200.0),
                                 ("keras+feat", 1000.0))}
    rows, ratios = memory.summarize(fake)
    assert ratios["kd / keras"]["peak"] == 0.99
    assert ratios["kd / keras"]["increment"] == 190.0 / 200.0
    assert ratios["kd+feat / keras+feat"]["peak"] == 1.2
    table = memory.table(rows, ratios)
    assert "| kd / keras | 0.990 | 0.950 | ≤ 1.1 (met) |" in table
    assert "| kd+feat / keras+feat | 1.200 | 2.000 | ≤ 1.1 (NOT met) |" in table


def test_soak_samples_memory_and_measures_growth(tmp_path):
    soak = _import_benchmark("soak")
    result = soak.run(epochs=2, steps_per_epoch=3, batch=8, warmup_epochs=1, warmup_steps=2,
                      sample_every=1, tb_every=1, log_dir=str(tmp_path / "tb"), pair="digits")
    assert [s[0] for s in result["samples"]] == list(range(7))  # step 0, then every step
    assert all(mib > 0 for _, _, mib in result["samples"])
    assert result["steps"] == 6 and math.isfinite(result["final_loss"])
    assert result["kd_weight_last"] == 0.5  # the warm-up reached its target
    assert os.listdir(tmp_path / "tb" / "train")  # TensorBoard was on
    assert math.isfinite(result["growth"]) and math.isfinite(result["slope_mib_per_1000_steps"])


def test_soak_growth_arithmetic():
    soak = _import_benchmark("soak")
    samples = [(step, 0.0, 100.0 + (step >= 10) * 10 + step / 100) for step in range(0, 101, 10)]
    result = soak.analyse(samples, warmup_steps=10)
    assert result["rss_after_warmup_mib"] == 110.3  # median of steps 10..50
    assert result["rss_end_mib"] == 110.8  # median of steps 60..100
    assert abs(result["slope_mib_per_1000_steps"] - 10.0) < 1e-9
    assert abs(result["growth"] - 0.5 / 110.3) < 1e-12


def test_step_time_backend_jax_hands_the_run_to_the_fused_floor_on_jax():
    step_time = _import_benchmark("step_time")
    command = step_time.jax_command(["--backend", "jax", "--rounds", "3", "--steps=5",
                                     "--out", "raw.json", "--quick", "--no-xla", "--write"])
    assert command[1].endswith("fused_floor.py")
    assert command[2:] == ["--backend", "jax", "--rounds", "3", "--steps", "5",
                           "--write-json", "raw.json", "--quick"]
    assert step_time._backend_from_argv(["--backend=jax"]) == "jax"
    assert step_time._backend_from_argv(["--rounds", "2"]) == "tensorflow"
    assert step_time.parse_args(["--backend", "jax"]).backend == "jax"
    # PyTorch is handed over the same way.
    command = step_time.jax_command(["--backend", "torch", "--rounds", "3"], "torch")
    assert command[1].endswith("fused_floor.py")
    assert command[2:] == ["--backend", "torch", "--rounds", "3"]
    assert step_time.parse_args(["--backend", "torch"]).backend == "torch"


def test_every_benchmark_script_imports():
    # A benchmark nobody runs for a while can rot silently (cache_topk.py
    # imported `keras_kd.teachers.zoo` for a release after the zoo moved);
    # import each one, in a fresh process so none of them touches this one.
    code = (
        "import glob, importlib.util, os, sys\n"
        "sys.path.insert(0, 'benchmarks')\n"
        "bad = []\n"
        "for path in sorted(glob.glob('benchmarks/*.py')):\n"
        "    name = 'bench_' + os.path.basename(path)[:-3]\n"
        "    spec = importlib.util.spec_from_file_location(name, path)\n"
        "    try:\n"
        "        spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "    except Exception as error:\n"
        "        bad.append(f'{path}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
