"""`keras-kd bench`: runs, resumes, reports, refuses to mix settings."""

import glob
import json
import os
import re

import numpy as np
import pytest

from keras_kd import datasets
from keras_kd.tools.bench import command as bench
from keras_kd.tools.bench import report as bench_report


@pytest.fixture(scope="module")
def small_digits():
    x, y = datasets.load("digits", "train", as_numpy=True)
    xt, yt = datasets.load("digits", "test", as_numpy=True)
    return (x[:192], y[:192]), (xt[:64], yt[:64])


def _run(tmp_path, data, **kwargs):
    options = dict(pair="digits-cnn", methods_=["kd", "fsp"], seeds=[0, 1], epochs=1,
                   train_size=None, output_dir=str(tmp_path / "bench"), verbose=0,
                   data=data)
    options.update(kwargs)
    return bench.run(**options)


def test_bench_runs_every_method_and_seed_and_writes_the_report(tmp_path, small_digits):
    result = _run(tmp_path, small_digits, methods_=["kd"])
    out = tmp_path / "bench"
    done = sorted(os.path.relpath(p, out) for p in glob.glob(str(out / "results/*/*/*.json")))
    assert done == sorted([
        "results/scratch/digits_thin_student/seed0.json",
        "results/scratch/digits_thin_student/seed1.json",
        "results/kd/digits_thin_student/seed0.json",
        "results/kd/digits_thin_student/seed1.json",
    ])
    for row in result["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["params"] > 0 and row["latency_ms"] > 0 and row["step_ms"] > 0
    report = (out / "report.md").read_text()
    assert "| kd | digits_thin_student (6,386) |" in report
    assert re.search(r"\| teacher \| digits_teacher \(289,066\) \| \d+\.\d\d \|", report)
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = glob.glob(str(out / "tensorboard/kd/digits_thin_student/seed0/**/events.out.*"),
                       recursive=True)
    assert events, "each run writes its own TensorBoard logs"


def test_width_matched_methods_run_on_the_matched_student_with_its_own_baseline():
    pair = bench.PAIRS["digits-cnn"]
    assert bench.plan_runs(pair, ["scratch", "kd", "fsp"], [0, 1]) == [
        ("scratch", "digits_thin_student", 0), ("scratch", "digits_thin_student", 1),
        ("scratch", "digits_matched_student", 0), ("scratch", "digits_matched_student", 1),
        ("kd", "digits_thin_student", 0), ("kd", "digits_thin_student", 1),
        ("fsp", "digits_matched_student", 0), ("fsp", "digits_matched_student", 1),
    ]
    # The Fashion-MNIST student already has the teacher's widths: one student.
    assert {s for _, s, _ in bench.plan_runs(bench.PAIRS["fmnist-cnn"], ["fsp"], [0])} == {
        "fmnist_student"}


def test_bench_resumes_without_retraining_finished_runs(tmp_path, small_digits, monkeypatch):
    _run(tmp_path, small_digits, methods_=["kd"], seeds=[0])
    trained = []
    original = bench.train_one

    def counting(method, student, seed, *args, **kwargs):
        trained.append((method, seed))
        return original(method, student, seed, *args, **kwargs)

    monkeypatch.setattr(bench, "train_one", counting)
    # A second seed added later: only its two runs train.
    result = _run(tmp_path, small_digits, methods_=["kd"], seeds=[0, 1])
    assert trained == [("scratch", 1), ("kd", 1)]
    assert len(result["rows"]) == 4


def test_bench_refuses_to_mix_results_of_other_settings(tmp_path):
    settings = {"pair": "digits-cnn", "epochs": 1, "batch_size": 32}
    bench._check_settings(str(tmp_path), settings)
    bench._check_settings(str(tmp_path), dict(settings))  # same settings: resume
    with pytest.raises(ValueError, match=r"epochs: 1 → 2.*another --output-dir"):
        bench._check_settings(str(tmp_path), dict(settings, epochs=2))


def test_bench_rejects_unknown_names_and_feature_methods_on_mlp_pairs(tmp_path):
    with pytest.raises(ValueError, match="Unknown pair 'nope'.*digits-cnn"):
        bench.run(pair="nope", output_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"Unknown method\(s\) \['kdd'\]"):
        bench.run(methods_=["kdd"], output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="feature methods.*fitnet.*--methods kd,kd_ls,dist,dkd,dkd_ls,nkd"):
        bench.run(pair="fmnist-mlp", methods_=["kd", "fitnet"], output_dir=str(tmp_path))


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


def test_stratified_subset_keeps_class_balance_and_is_fixed():
    y = np.repeat(np.arange(4), [100, 200, 300, 400]).astype("int32")
    x = np.arange(len(y), dtype="float32")
    xs, ys = bench._subset(x, y, 100)
    assert np.bincount(ys).tolist() == [10, 20, 30, 40]
    assert np.array_equal(xs, bench._subset(x, y, 100)[0])


def test_results_are_written_atomically(tmp_path):
    path = tmp_path / "r" / "seed0.json"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "seed0.json.tmp").write_text("the user's")  # not the bench's to replace
    bench.write_json(str(path), {"a": 1}, indent=1)
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path / "r")) == ["seed0.json", "seed0.json.tmp"]
    assert (tmp_path / "r" / "seed0.json.tmp").read_text() == "the user's"


def test_cli_bench_runs_and_reports_bad_input_cleanly(tmp_path, capsys):
    from keras_kd.tools import cli

    out = tmp_path / "cli"
    assert cli.main(["bench", "--methods", "kd", "--seeds", "0", "--epochs", "1",
                     "--train-size", "100", "--output-dir", str(out), "--quiet"]) == 0
    assert (out / "report.md").exists() and (out / "results/kd/digits_thin_student/seed0.json").exists()
    assert cli.main(["bench", "--methods", "kdd", "--output-dir", str(tmp_path / "x")]) == 2
    assert "Unknown method(s) ['kdd']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--pair", "nope"])


def test_shipped_fashion_mnist_teacher_on_the_real_test_set(fashion_mnist):
    """The bench's fmnist-cnn teacher, on the real Fashion-MNIST test split
    (installed in CI by .ci/run): it is the file `keras-kd bench --pair
    fmnist-cnn` finds, with the accuracy its report states (93.03%)."""
    import keras

    path = bench.find_teacher(bench.PAIRS["fmnist-cnn"], "/nonexistent")
    assert path is not None and path.endswith("saved_models/fashion_mnist_teacher.keras")
    teacher = keras.saving.load_model(path)
    x, y = datasets.load("fashion_mnist", "test", as_numpy=True)
    assert bench.accuracy(teacher, x, y) == pytest.approx(0.9303, abs=5e-4)
    assert teacher.count_params() == 121_946


def test_logit_methods_read_the_cached_teacher_and_match_the_live_run(tmp_path, small_digits):
    from keras_kd import zoo
    from keras_kd.tools.bench import train as bench_train

    teacher = zoo.get("digits_teacher", input_shape=(8, 8, 1), num_classes=10)
    (x, y), _ = small_digits
    cache = bench_train.logit_cache(teacher, x, y, batch_size=50)
    assert cache.num_samples == len(y)
    settings = dict(epochs=1, batch_size=32, learning_rate=1e-3, temperature=4.0)
    pair = bench.PAIRS["digits-cnn"]
    rows = {}
    for source in ("cache", "live"):
        row = bench_train.train_one(
            "kd", pair.student, 0, teacher, pair, small_digits, settings, str(tmp_path), 0,
            cache=cache if source == "cache" else None)
        assert row["teacher_source"] == source
        rows[source] = row
    # Same order (the same seeded shuffle), same logits: the same student.
    assert rows["cache"]["accuracy"] == pytest.approx(rows["live"]["accuracy"], abs=1 / 64)
    # Feature methods never read the cache.
    fitnet = bench_train.train_one("fitnet", pair.student, 0, teacher, pair, small_digits,
                                   settings, str(tmp_path), 0, cache=cache)
    assert fitnet["teacher_source"] == "live"
    with pytest.raises(ValueError, match="cache holds 100 samples but the run trains on 192"):
        small = bench_train.logit_cache(teacher, x[:100], y[:100])
        bench_train.train_one("kd", pair.student, 0, teacher, pair, small_digits, settings,
                              str(tmp_path), 0, cache=small)


def test_bench_validation_split_holds_out_part_of_the_students_training_data(
        tmp_path, small_digits, monkeypatch):
    from keras_kd.tools.bench import train as bench_train

    trained_on = []
    train_one = bench_train.train_one

    def spy(method, student_name, seed, teacher, pair, data, *args, **kwargs):
        trained_on.append((len(data[0][1]), len(kwargs["validation"][1])))
        return train_one(method, student_name, seed, teacher, pair, data, *args, **kwargs)

    monkeypatch.setattr(bench, "train_one", spy)
    result = _run(tmp_path, small_digits, methods_=["scratch"], seeds=[0],
                  validation_split=0.25)
    (row,) = result["rows"]
    held = sum(max(1, int(round(0.25 * n))) for n in np.bincount(small_digits[0][1]) if n)
    assert trained_on == [(192 - held, held)]
    assert 0.0 <= row["val_accuracy"] <= 1.0
    out = tmp_path / "bench"
    assert glob.glob(str(out / "tensorboard/scratch/digits_thin_student/seed0/validation/events.*"))
    assert json.loads((out / "bench.json").read_text())["validation_split"] == 0.25


def test_cli_bench_refuses_a_bad_validation_split_before_writing(tmp_path, capsys):
    from keras_kd.tools import cli

    out = tmp_path / "bad"
    assert cli.main(["bench", "--methods", "kd", "--seeds", "0", "--epochs", "1",
                     "--validation-split", "1.5", "--output-dir", str(out)]) == 2
    assert "--validation-split must be a fraction in (0, 1)" in capsys.readouterr().err
    assert not out.exists()
