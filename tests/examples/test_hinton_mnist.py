"""examples/hinton_mnist.py: a quick digits run (tables, JSON, resume) and its bias correction."""

import json

import numpy as np
import pytest

from tests.helpers.example_scripts import load_example


@pytest.fixture(scope="module")
def example():
    return load_example("hinton_mnist")


def test_bias_for_prior_matches_a_numpy_quantile_of_the_margins(example):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 10)) * 2.0
    logits[:, 3] -= 4.0  # class 3 rarely wins, as for a class missing from the transfer set
    prior = 0.1
    bias = example.bias_for_prior(logits, 3, prior)

    others = np.max(np.concatenate([logits[:, :3], logits[:, 4:]], axis=1), axis=1)
    margin = np.sort(others - logits[:, 3])
    k = 50  # round(0.1 * 500)
    assert bias == pytest.approx((margin[k - 1] + margin[k]) / 2, rel=1e-12)
    assert bias > 0
    assert int((np.argmax(logits, axis=1) == 3).sum()) < k
    corrected = example.shifted(logits, 3, bias)
    assert int((np.argmax(corrected, axis=1) == 3).sum()) == k
    assert np.array_equal(np.delete(corrected, 3, axis=1), np.delete(logits, 3, axis=1))


def test_bias_for_prior_lowers_an_overpredicted_class_and_handles_the_extremes(example):
    logits = np.array([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.5, 0.0]])
    # Class 0 wins all 4 rows (margins -3, -2, -1, -0.5); prior 0.5 keeps the 2 widest.
    assert example.bias_for_prior(logits, 0, 0.5) == pytest.approx(-1.5)
    assert example.bias_for_prior(logits, 0, 0.0) == pytest.approx(-4.0)
    assert example.bias_for_prior(logits, 0, 1.0) == pytest.approx(0.5)


def test_error_counts(example):
    logits = np.eye(3)[[0, 1, 2, 2]]
    y = np.array([0, 2, 2, 1])
    assert example.error_counts(logits, y) == 2
    assert example.error_counts(logits, y, cls=2) == (2, 1)


def test_quick_digits_run_prints_the_tables_writes_json_and_resumes(example, tmp_path):
    out = tmp_path / "hinton" / "digits.json"
    argv = ["--quick", "--dataset", "digits", "--omit-class", "3", "--max-train", "200",
            "--nondeterministic", "--out", str(out)]
    first = example.main(argv, log=lambda line: None)

    runs = json.loads(out.read_text())["runs"]
    expected = {f"digits/30/{m}/0" for m in ("scratch", "T=1", "T=4", "omit3/scratch", "omit3/T=20")}
    assert set(runs) == expected == set(first["trained"])
    for key, entry in runs.items():
        assert 0 <= entry["test_errors"] <= 359, key
    omitted = runs["digits/30/omit3/T=20/0"]
    assert omitted["class_count"] == 37 and 0 <= omitted["class_errors"] <= 37
    assert np.isfinite(omitted["bias"]) and 0 <= omitted["test_errors_corrected"] <= 359
    assert (tmp_path / "hinton" / "hinton_teacher_digits.keras").exists()

    table = first["table"]
    assert (tmp_path / "hinton" / "digits.md").read_text().strip() == table.strip()
    for row in ("| teacher 2×1200 dropout |", "| student, labels only |", "| distilled, T = 1 |",
                "| distilled, T = 4 |", "| 2×30 | labels only |", "| 2×30 | distilled, T = 20 |"):
        assert row in table, row
    assert "| model | 2×30 student |" in table

    # Second call: the teacher is reloaded, every run is skipped, the numbers are unchanged.
    second = example.main(argv, log=lambda line: None)
    assert second["trained"] == [] and set(second["skipped"]) == expected
    assert json.loads(out.read_text())["runs"] == runs
    assert second["table"] == table
