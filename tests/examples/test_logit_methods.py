"""examples/logit_methods.py runs end to end (tiny settings), and its recipes."""

import json
import os

import pytest

from keras_kd import losses
from keras_kd.zoo import recipes as methods

from tests.helpers.example_scripts import load_example
from tests.helpers.paths import ROOT


@pytest.mark.parametrize("epochs, warmup, temperature", [(1, 1, 1.0), (120, 4, 1 + 3 / 7),
                                                    (240, 20, 4.0)])
def test_dkd_recipe_warms_up_by_run_length(epochs, warmup, temperature):
    # The rule itself is tested in tests/zoo/test_recipes.py; the example's DKD
    # row runs the recipe at its own T (`OWN_TEMPERATURE`).
    assert "dkd" in methods.OWN_TEMPERATURE
    plan = methods.recipe("dkd", epochs)
    (term,) = plan.terms
    assert isinstance(term, losses.DKD) and plan.student_loss_weight == 1.0
    assert term.warmup_epochs == warmup
    assert term.temperature == pytest.approx(temperature)
    assert term.alpha == 1.0
    assert term.default_schedule.warmup_epochs == warmup


def test_nkd_recipe_uses_the_authors_defaults():
    # The example passes its T = 4 to KD only (`OWN_TEMPERATURE`).
    assert "nkd" in methods.OWN_TEMPERATURE
    plan = methods.recipe("nkd", 10)
    (term,) = plan.terms
    assert isinstance(term, losses.NKD) and plan.student_loss_weight == 1.0
    assert (term.temperature, term.gamma) == (1.0, 1.5)
    assert {"dkd", "nkd"} <= set(methods.METHODS)


@pytest.mark.slow
def test_logit_methods_example_reports_every_row(tmp_path):
    example = load_example("logit_methods")
    out = tmp_path / "logit_methods"
    table = example.main([
        "--epochs", "2", "--seeds", "1", "--teacher-epochs", "1", "--max-train", "200",
        "--nondeterministic", "--out", str(out),
        "--teacher", os.path.join(ROOT, "saved_models", "digits_teacher.keras"),
    ])
    assert (out / "table.md").read_text().strip() == table.strip()
    summary = table.split("\n\nTeachers")[0]
    for key, label, _ in example.ROWS:
        assert f"| {label.format(pct='10')} | " in summary, label
    results = json.loads((out / "results.json").read_text())
    keys = [key for key, _, _ in example.ROWS]
    assert sorted(r["method"] for r in results["rows"]) == sorted(keys)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in results["rows"])
    assert set(results["teachers"]["accuracy"]) >= {"shipped", "ensemble", "cnn_b"}
