"""`keras-kd bench`: runs, resumes, refuses to mix settings, holds out a
validation split; the shipped Fashion-MNIST teacher. The report's statistics:
test_report.py; the cached teacher of the logit methods: test_train.py."""

import glob
import json
import os
import re

import numpy as np
import pytest

from keras_kd import datasets
from keras_kd.tools.bench import command as bench


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
