"""`keras-kd tune`: a tiny KerasTuner search on digits that resumes, never
reads the test split, and writes a run config `keras-kd distill` accepts."""

import os
import re

import numpy as np
import pytest

from keras_kd import datasets, zoo
from keras_kd.tools.tune import command as tune
from keras_kd.tools import cli
from keras_kd.tools.config import validate as config
from keras_kd.zoo import recipes as methods
from keras_kd.distiller import Distiller

from tests.helpers.paths import ROOT

TEACHER = os.path.join(ROOT, "saved_models", "digits_teacher.keras")


@pytest.fixture
def train_only(monkeypatch):
    """datasets.load that records the splits asked for and refuses the test split."""
    asked = []
    original = datasets.load

    def load(name, split="train", *args, **kwargs):
        asked.append(split)
        if split != "train":
            raise AssertionError(f"tune read the '{split}' split")
        return original(name, split, *args, **kwargs)

    monkeypatch.setattr(datasets, "load", load)
    return asked


@pytest.fixture
def fit_calls(monkeypatch):
    """Counts Distiller.fit calls (one per trial that trains)."""
    calls = []
    original = Distiller.fit

    def fit(self, *args, **kwargs):
        calls.append(kwargs.get("epochs"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Distiller, "fit", fit)
    return calls


def _search(out, **kwargs):
    args = dict(method="kd", student="digits_student", dataset="digits", teacher=TEACHER,
                epochs=1, trials=2, train_size=400, algorithm="random", output_dir=str(out),
                verbose=0)
    args.update(kwargs)
    return tune.run(**args)


def test_a_tiny_search_resumes_reads_only_train_and_writes_a_valid_config(
        tmp_path, train_only, fit_calls):
    out = tmp_path / "kd"
    first = _search(out)
    assert fit_calls == [1, 1]  # two trials, one epoch each
    assert set(train_only) == {"train"}

    cfg = config.load(first["config"])  # valid for `keras-kd distill`
    (term,) = cfg["terms"]
    assert term["type"] == "KD"
    assert term["temperature"] == first["best"]["temperature"]
    assert term["weight"] == first["best"]["weight"]
    assert cfg["student_loss_weight"] == first["best"]["student_loss_weight"]
    assert cfg["epochs"] == 1 and cfg["student"] == "digits_student"
    assert cfg["dataset"]["name"] == "digits"
    assert 0.0 <= first["val_accuracy"] <= 1.0

    table = (out / "trials.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and "completed" in line]
    assert len(rows) == 2
    assert f"{first['val_accuracy']:.4f}" in rows[0]  # best first

    # Re-running the same search trains nothing and gives the same answer.
    second = _search(out)
    assert fit_calls == [1, 1]
    assert second["best"] == first["best"]
    assert second["val_accuracy"] == pytest.approx(first["val_accuracy"])
    assert set(train_only) == {"train"}


def test_logit_trials_read_the_teacher_cache_built_once(tmp_path, train_only, monkeypatch):
    import tensorflow as tf

    from keras_kd.tools.bench import train as bench_train

    built, fed = [], []
    original_cache, original_fit = bench_train.logit_cache, Distiller.fit

    def logit_cache(teacher, x, y, batch_size=512):
        built.append(len(y))
        return original_cache(teacher, x, y, batch_size)

    def fit(self, x=None, *args, **kwargs):
        fed.append(x)
        return original_fit(self, x, *args, **kwargs)

    monkeypatch.setattr(bench_train, "logit_cache", logit_cache)
    monkeypatch.setattr(Distiller, "fit", fit)
    _search(tmp_path / "cached", train_size=200)
    (_, y_train), _ = datasets.validation_split(*tune.load_train_only("digits", 200), 0.1, seed=0)
    assert built == [len(y_train)]  # once for both trials, on the training part only
    assert len(fed) == 2 and all(isinstance(x, tf.data.Dataset) for x in fed)
    assert len(fed[0].element_spec) == 3  # (x, y, teacher logits)

    fed.clear()
    _search(tmp_path / "live", train_size=200, cache_teacher=False)
    assert built == [len(y_train)] and all(isinstance(x, np.ndarray) for x in fed)


def test_a_resumed_search_with_other_settings_is_refused(tmp_path, train_only):
    out = tmp_path / "kd"
    _search(out, trials=1)
    with pytest.raises(ValueError, match="other settings.*epochs: 1 → 2"):
        _search(out, trials=1, epochs=2)


def test_validation_split_is_stratified_disjoint_and_fixed():
    y = np.repeat(np.arange(3), [50, 30, 20])
    x = np.arange(100)[:, None].astype("float32")
    (xt, yt), (xv, yv) = datasets.validation_split(x, y, 0.1, seed=3)
    assert np.bincount(yv).tolist() == [5, 3, 2]
    assert len(set(xt[:, 0]) & set(xv[:, 0])) == 0 and len(yt) + len(yv) == 100
    (_, _), (xv2, _) = datasets.validation_split(x, y, 0.1, seed=3)
    assert np.array_equal(xv, xv2)
    with pytest.raises(ValueError, match=r"--val-fraction must be a fraction in \(0, 1\)"):
        datasets.validation_split(x, y, 1.0, seed=0, name="--val-fraction")


def test_two_stage_recipes_become_piecewise_schedules_in_a_valid_config():
    student = zoo.cnn((8, 8, 1), 10, widths=(8, 16, 32), pool_after=(2,))
    plan = methods.recipe("fitnet", 8, student=student, two_stage=True)
    terms, slw, slw_schedule = tune.recipe_to_config_terms(plan)
    hint, kd = terms
    assert hint["type"] == "FitNet" and hint["weight"] == 1.0
    assert hint["schedule"] == {"type": "piecewise", "boundaries_epochs": [2], "factors": [1.0, 0.0]}
    assert kd["type"] == "KD" and kd["weight"] == 1.0
    assert kd["schedule"]["factors"] == [0.0, 1.0]
    assert slw == 1.0 and slw_schedule["factors"] == [0.0, 1.0]
    raw = {"teacher": TEACHER, "student": "digits_student", "epochs": 8,
           "dataset": {"name": "digits"}, "terms": terms, "student_loss_weight": slw,
           "student_loss_schedule": slw_schedule}
    cfg = config.validate(raw)
    assert cfg["terms"][0]["schedule"]["boundaries_epochs"] == [2]


def test_cli_tune_without_a_teacher_fails_with_a_clear_message(capsys, train_only):
    code = cli.main(["tune", "--method", "kd", "--dataset", "digits",
                     "--student", "digits_student"])
    assert code == 2
    assert "--method kd needs --teacher" in capsys.readouterr().err


def test_cli_tune_says_how_to_install_keras_tuner_when_missing(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_tuner(name, *args, **kwargs):
        if name == "keras_tuner":
            raise ImportError("No module named 'keras_tuner'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tuner)
    code = cli.main(["tune", "--method", "kd", "--dataset", "digits", "--teacher", TEACHER,
                     "--student", "digits_student"])
    assert code == 2
    assert "pip install keras-tuner" in capsys.readouterr().err


@pytest.mark.parametrize("method, weights, defaults", [
    ("kd", [0.5, 0.9, 1.0, 2.0], {"temperature": 4.0, "weight": 1.0,
                                  "student_loss_weight": 1.0}),
    ("kd_ls", [0.5, 0.9, 1.0, 2.0, 9.0], {"temperature": 2.0, "weight": 9.0,
                                          "student_loss_weight": 0.1}),
    ("dist", None, {"beta": 2.0, "gamma": 2.0, "temperature": 4.0}),
    ("dkd", None, {"beta": 0.5, "temperature": 1.0, "alpha": 1.0}),
    ("dkd_ls", None, {"beta": 1.0 + 7 * 5 / 240, "temperature": 4.0}),
    ("mlkd", [0.5, 0.9, 1.0, 9.0], {"temperature": 1.0, "weight": 0.5,
                                   "student_loss_weight": 0.5}),
    ("mlkd_ls", [0.5, 0.9, 1.0, round(1 + 8 * 5 / 480, 12), 9.0],
     {"temperature": 2.0, "weight": round(1 + 8 * 5 / 480, 12), "student_loss_weight": 0.5}),
    ("wttm", [1.0, 2.0, 4.0, 8.0], {"gamma": 0.2, "weight": 4.0, "student_loss_weight": 1.0}),
])
def test_search_spaces_start_from_the_recipe(method, weights, defaults):
    """Each space's defaults are the recipe's own, and the recipe's weight is
    among the choices (kd_ls's 9); kd's list is the one the docs searched."""
    kt = pytest.importorskip("keras_tuner")
    hp = kt.HyperParameters()
    tune.SPACES[method](hp, methods.recipe(method, 5))
    space = {p.name: p for p in hp.space}
    if weights is not None:
        assert list(space["weight"].values) == weights
    for name, value in defaults.items():
        assert space[name].default == value, name


def test_trials_md_numbers_trials_as_keras_tuner_shows_them(tmp_path, capsys):
    """KerasTuner prints 'Running Trial #1' for trial id '00': trials.md says 1 too."""
    import keras
    import keras_tuner as kt

    from keras_kd.tools.tune.report import trials_table

    def build(hp):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(hp.Float("lr", 1e-3, 1e-1)),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    x = np.arange(16, dtype="float32").reshape(8, 2) / 16
    y = (x[:, 0] > 0.5).astype("int32")
    tuner = kt.RandomSearch(build, objective=kt.Objective("val_accuracy", "max"), max_trials=3,
                            seed=0, directory=str(tmp_path), project_name="p")
    tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=1)
    shown = sorted(int(n) for n in re.findall(r"Running Trial #(\d+)", capsys.readouterr().out))
    table = trials_table(tuner)
    numbered = sorted(int(line.split("|")[1]) for line in table.splitlines()[2:])
    assert shown == numbered == [1, 2, 3]


def test_the_tune_extra_installs_what_the_default_search_needs(tmp_path):
    """`keras-kd tune`'s default algorithm is KerasTuner's BayesianOptimization,
    which refuses to start without scikit-learn and scipy."""
    import argparse
    import configparser

    import keras_tuner as kt

    parser = argparse.ArgumentParser()
    tune.add_arguments(parser)
    assert parser.get_default("algorithm") == "bayesian"
    setup = configparser.ConfigParser()
    setup.read(os.path.join(ROOT, "setup.cfg"))
    extras = setup["options.extras_require"]

    def names(extra):
        return {re.split(r"[<>=!~;\[ ]", line.strip())[0].lower()
                for line in extras[extra].splitlines() if line.strip()}

    assert {"keras-tuner", "scikit-learn", "scipy"} <= names("tune")
    assert {"keras-tuner", "scikit-learn", "scipy"} <= names("test")
    # What the test extra installed builds the default search.
    kt.BayesianOptimization(lambda hp: None, objective="val_accuracy", max_trials=1,
                            directory=str(tmp_path), project_name="p")
