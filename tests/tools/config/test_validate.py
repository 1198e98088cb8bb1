"""`keras-kd distill CONFIG`: config validation, overrides, and real runs.

Validation tests need no TensorFlow work; the run tests train the digits
recipe (recipes/digits_kd.yaml) for 1-2 epochs in tmp_path.
"""

import glob
import json
import os

import keras
import numpy as np
import pytest

from keras_kd.tools import cli
from keras_kd.tools.config import validate as config
from keras_kd.tools.run import runner as run_config

from tests.helpers.paths import ROOT

DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")


def _base(**changes):
    data = {
        "teacher": None,
        "student": "digits_student",
        "dataset": {"name": "digits", "batch_size": 32},
        "epochs": 1,
        "output_dir": "runs/x",
    }
    data.update(changes)
    return data


def _problems(data, **kwargs):
    with pytest.raises(config.ConfigError) as info:
        config.validate(data, **kwargs)
    return info.value.problems


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


# ----------------------------------------------------------------------------
# Validation: every problem, each naming its key.

def test_unknown_keys_are_named_with_a_suggestion():
    data = _base(optimzer={"name": "sgd"})
    data["dataset"]["batch_sise"] = 8
    problems = _problems(data)
    assert any(p.startswith("optimzer: unknown key; did you mean 'optimizer'?") for p in problems)
    assert any(p.startswith("dataset.batch_sise: unknown key; did you mean 'batch_size'?")
               for p in problems)


def test_wrong_types_name_the_key_and_the_value():
    data = _base(teacher="saved_models/digits_teacher.keras",
                 terms=[{"type": "KD"}, {"type": "KD", "name": "kd2", "temperature": "four"}],
                 epochs=2.5, mixed_precision="yes")
    problems = _problems(data, check_files=False)
    assert "terms[1].temperature: expected a number > 0, got 'four' (str)" in problems
    assert "epochs: expected an integer >= 1, got 2.5 (float)" in problems
    assert "mixed_precision: expected true or false, got 'yes' (str)" in problems


def test_unknown_term_type_and_argument():
    data = _base(teacher="digits_teacher", terms=[
        {"type": "KDD"}, {"type": "FitNet", "teacher_layer": "a", "studnet_layer": "b"}])
    problems = _problems(data)
    assert any(p.startswith("terms[0].type: Unknown term type 'KDD'. Did you mean 'KD'?")
               for p in problems)
    assert any(p.startswith("terms[1].studnet_layer: unknown key; did you mean "
                            "'student_layer'?") for p in problems)


def test_the_term_class_own_checks_are_reported_under_the_term():
    data = _base(teacher="digits_teacher", terms=[
        {"type": "AttentionTransfer", "teacher_layers": ["a", "b"], "student_layers": ["a"]}])
    (problem,) = _problems(data)
    assert problem.startswith("terms[0]: AttentionTransfer(...) refused the arguments:")


def test_missing_keras_file_and_unknown_zoo_name(tmp_path):
    data = _base(teacher=str(tmp_path / "nope.keras"), student="resnet8",
                 terms=[{"type": "KD"}])
    problems = _problems(data)
    assert any(p.startswith(f"teacher: file '{tmp_path / 'nope.keras'}' does not exist")
               for p in problems)
    assert any(p.startswith("student: 'resnet8' is not a .keras file, a zoo name or "
                            "module:function; did you mean 'resnet8x4'?") for p in problems)
    # Files that a teacher recipe will export later pass with check_files=False.
    config.validate(dict(data, student="resnet8x4"), check_files=False)


def test_bad_module_function():
    problems = _problems(_base(student="no_such_module_kd:build"))
    assert problems[0].startswith("student: cannot import module 'no_such_module_kd'")
    problems = _problems(_base(student="keras_kd.zoo:digits_studnet"))
    assert problems == ["student: module 'keras_kd.zoo' has no attribute 'digits_studnet'; "
                        "did you mean 'digits_student'?"]
    problems = _problems(_base(student="keras_kd.zoo:NAMES"))
    assert problems[0].startswith("student: 'keras_kd.zoo:NAMES' is not callable")


def test_required_keys_teacher_rules_and_all_problems_at_once():
    problems = _problems({"student": "digits_student"})
    assert problems == ["teacher: required key is missing", "dataset: required key is missing",
                        "epochs: required key is missing"]
    problems = _problems(_base(terms=[{"type": "KD"}]))
    assert problems[0].startswith("teacher: is null (train the student alone) but 'terms'")
    problems = _problems(_base(teacher="digits_teacher", method="kd", terms=[{"type": "KD"}]))
    assert problems[0].startswith("method: give either 'method'")
    problems = _problems(_base(teacher="digits_teacher"))
    assert problems[0].startswith("terms: a teacher is named but neither")
    message = str(pytest.raises(config.ConfigError, config.validate, _base(
        epochs=0, seed=-1, strategy="mirored")).value)
    assert message.startswith("3 problems:")
    assert "strategy: expected one of default, mirrored, got 'mirored' (str); did you mean " \
           "'mirrored'?" in message


def test_schedules_are_checked():
    data = _base(teacher="digits_teacher", terms=[
        {"type": "KD", "schedule": {"type": "piecewise", "boundaries_epochs": [5, 3],
                                    "factors": [1, 0, 0]}},
        {"type": "NKD", "schedule": {"type": "piecewise", "boundaries_epochs": [5, 8],
                                     "factors": [1, 0]}}],
        optimizer={"name": "sgd", "schedule": {"type": "piecewise",
                                               "boundaries_epochs": [150]}})
    problems = _problems(data)
    assert "terms[0].schedule.boundaries_epochs: expected strictly increasing values, " \
           "got [5, 3]" in problems
    assert any(p.startswith("terms[1].schedule.factors: expected 3 factors") for p in problems)
    assert any(p.startswith("optimizer.schedule: give exactly one of 'factor'")
               for p in problems)


def test_defaults_are_filled_in():
    cfg = config.validate(_base())
    assert cfg["optimizer"] == {"name": "adam", "learning_rate": 0.001, "momentum": 0.0,
                                "nesterov": False, "weight_decay": 0.0,
                                "weight_decay_mode": "coupled", "schedule": None}
    assert cfg["export"] == {"formats": ["keras"], "path": os.path.join("runs/x", "student")}
    assert cfg["dataset"]["augment"] == "none" and cfg["terms"] == []


# ----------------------------------------------------------------------------
# Files and overrides.

def test_yaml_and_toml_load_the_same_config(tmp_path):
    (tmp_path / "run.toml").write_text(
        'teacher = "saved_models/digits_teacher.keras"\n'
        'student = "digits_student"\n'
        "epochs = 20\nseed = 0\n"
        'output_dir = "runs/digits_kd"\n'
        "student_loss_weight = 0.1\n"
        '[dataset]\nname = "digits"\nbatch_size = 32\n'
        '[[terms]]\ntype = "KD"\ntemperature = 4\nweight = 0.9\n'
        '[optimizer]\nname = "adam"\nlearning_rate = 0.003\nschedule = {type = "cosine"}\n'
        '[export]\nformats = ["keras", "savedmodel"]\n')
    from_toml = config.load(tmp_path / "run.toml", check_files=False)
    from_yaml = config.load(DIGITS, check_files=False)
    assert from_toml == from_yaml
    assert config.config_hash(from_toml) == config.config_hash(from_yaml)


def test_yaml_exponent_floats_and_default_output_dir(tmp_path):
    path = tmp_path / "wd.yml"
    path.write_text("teacher: null\nstudent: digits_student\ndataset: {name: digits}\n"
                    "epochs: 1\noptimizer: {name: sgd, weight_decay: 5e-4}\n")
    cfg = config.load(path)
    assert cfg["optimizer"]["weight_decay"] == 0.0005
    assert cfg["output_dir"] == os.path.join("runs", "wd")


def test_set_overrides():
    data = config.apply_overrides(
        {"dataset": {"name": "digits"}, "terms": [{"type": "KD"}]},
        ["dataset.batch_size=16", "terms[0].weight=0.5", "terms.0.temperature=2",
         "optimizer.schedule.boundaries_epochs=[150, 180]", "teacher=null",
         "optimizer.weight_decay=5e-4", "output_dir=runs/a=b"])
    assert data == {"dataset": {"name": "digits", "batch_size": 16},
                    "terms": [{"type": "KD", "weight": 0.5, "temperature": 2}],
                    "optimizer": {"schedule": {"boundaries_epochs": [150, 180]},
                                  "weight_decay": 0.0005},
                    "teacher": None, "output_dir": "runs/a=b"}
    with pytest.raises(config.ConfigError, match="terms\\[3\\]"):
        config.apply_overrides({"terms": []}, ["terms[3].weight=1"])
    with pytest.raises(config.ConfigError, match="expected KEY=VALUE"):
        config.apply_overrides({}, ["epochs"])


def test_cli_validate_only(capsys, in_root):
    assert cli.main(["distill", DIGITS, "--validate-only", "--epochs", "3",
                     "--set", "dataset.batch_size=8"]) == 0
    assert "valid (config hash" in capsys.readouterr().out
    code = cli.main(["distill", DIGITS, "--validate-only", "--set", "terms[0].temperature=four",
                     "--set", "dataset.augment=crop"])
    err = capsys.readouterr().err
    assert code == 2
    assert "terms[0].temperature: expected a number > 0, got 'four' (str)" in err
    assert "dataset.augment: expected one of none, cifar, got 'crop'" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------
# Real runs on the embedded digits.

def _digits(tmp_path, *extra, name="run"):
    out = tmp_path / name
    return config.load(DIGITS, overrides=[f"output_dir={out}", f"export.path={out}/student",
                                          *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """recipes/digits_kd.yaml for 2 epochs, both export formats."""
    tmp_path = tmp_path_factory.mktemp("digits")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        cfg = _digits(tmp_path, "epochs=2")
        results = run_config.run(cfg, verbose=0)
    finally:
        os.chdir(cwd)
    return cfg, results


def test_digits_recipe_trains_logs_and_exports(finished):
    cfg, results = finished
    out = cfg["output_dir"]
    with open(os.path.join(out, "results.json")) as handle:
        saved = json.load(handle)
    assert saved["test_accuracy"] == results["test_accuracy"] > 0.5
    assert saved["epochs"] == 2 and saved["params"] == 2410
    assert saved["config_hash"] == config.config_hash(cfg)
    assert len(saved["history"]["kd"]) == 2
    assert glob.glob(os.path.join(out, "logs", "train", "events.out.tfevents.*"))
    assert config.load(os.path.join(out, "config.yaml")) == cfg  # the resolved copy
    student = keras.saving.load_model(os.path.join(out, "student.keras"))
    assert student.count_params() == 2410
    assert os.path.isfile(os.path.join(out, "student", "saved_model.pb"))
    assert not os.path.exists(os.path.join(out, "backup"))  # removed after a finished run
    x = np.zeros((1, 8, 8, 1), "float32")
    assert student.predict(x, verbose=0).shape == (1, 10)


def test_finished_run_is_not_retrained_and_exports_are_never_overwritten(
        finished, tmp_path, capsys, in_root):
    cfg, results = finished
    before = os.path.getmtime(os.path.join(cfg["output_dir"], "student.keras"))
    assert run_config.run(cfg, verbose=0) == json.load(
        open(os.path.join(cfg["output_dir"], "results.json")))
    assert "Already finished" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(cfg["output_dir"], "student.keras")) == before
    # Another run that would export onto the finished run's student: refused
    # before any training, with a clean CLI error (exit 2).
    code = cli.main(["distill", DIGITS, "--output-dir", str(tmp_path / "other"),
                     "--set", f"export.path={cfg['export']['path']}", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "already exist" in err and "--overwrite" in err
    assert "Traceback" not in err
    # The same output_dir with a different config: refused too.
    changed = dict(cfg, seed=1)
    with pytest.raises(FileExistsError, match="holds a run of a different config"):
        run_config.run(changed, verbose=0)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated interruption after epoch 1")


def _student_weights(cfg):
    model = keras.saving.load_model(os.path.join(cfg["output_dir"], "student.keras"))
    return model.get_weights()


def test_rerun_after_an_interruption_resumes(tmp_path, in_root):
    cfg = _digits(tmp_path, "epochs=2", "dataset.shuffle_buffer=0", "export.formats=[keras]")
    with pytest.raises(KeyboardInterrupt):
        run_config.run(cfg, callbacks=[_Interrupt()], verbose=0)
    backup = os.path.join(cfg["output_dir"], "backup")
    with open(os.path.join(backup, "training_metadata.json")) as handle:
        assert json.load(handle)["epoch"] == 1
    assert not os.path.exists(os.path.join(cfg["output_dir"], "results.json"))
    results = run_config.run(cfg, verbose=0)
    assert results["resumed_after_epochs"] == 1
    assert len(results["history"]["kd"]) == 1  # only epoch 2 ran again
    assert not os.path.exists(backup)


@pytest.mark.slow
def test_resumed_run_ends_as_an_uninterrupted_one(tmp_path, in_root):
    """Without shuffling (the pipeline restarts on resume) the resumed run's
    student equals the uninterrupted run's, up to float round-off."""
    cut = _digits(tmp_path, "epochs=2", "dataset.shuffle_buffer=0", "export.formats=[keras]",
                  name="cut")
    with pytest.raises(KeyboardInterrupt):
        run_config.run(cut, callbacks=[_Interrupt()], verbose=0)
    run_config.run(cut, verbose=0)
    whole = _digits(tmp_path, "epochs=2", "dataset.shuffle_buffer=0", "export.formats=[keras]",
                    name="whole")
    run_config.run(whole, verbose=0)
    for a, b in zip(_student_weights(cut), _student_weights(whole)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_null_trains_the_student_alone(tmp_path, in_root):
    cfg = _digits(tmp_path, "teacher=null", "terms=null", "epochs=1",
                  "optimizer={name: sgd, learning_rate: 0.1, momentum: 0.9, "
                  "weight_decay: 5e-4, schedule: {type: piecewise, boundaries_epochs: [1], "
                  "factor: 0.1}}")
    results = run_config.run(cfg, verbose=0)
    assert "kd" not in results["history"] and results["test_accuracy"] > 0.3
    student = keras.saving.load_model(os.path.join(cfg["output_dir"], "student.keras"))
    assert student.name == "digits_student"


def test_module_function_student(tmp_path, in_root):
    (tmp_path / "my_models_kd.py").write_text(
        "import keras\n"
        "def tiny(input_shape, num_classes):\n"
        "    inputs = keras.Input(input_shape)\n"
        "    x = keras.layers.Flatten()(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(num_classes, name='logits')(x),\n"
        "                       name='tiny')\n")
    path = tmp_path / "run.yaml"
    path.write_text(
        f"teacher: {ROOT}/saved_models/digits_teacher.keras\n"
        "student: my_models_kd:tiny\n"
        "dataset: {name: digits, batch_size: 64}\n"
        "terms: [{type: KD, temperature: 4, weight: 0.9,"
        " schedule: {type: linear_warmup, warmup_epochs: 2}}]\n"
        "student_loss_weight: 0.1\n"
        f"epochs: 1\noutput_dir: {tmp_path}/out\n")
    cfg = config.load(path)  # the config's folder is importable
    results = run_config.run(cfg, verbose=0, search_path=[str(tmp_path)])
    assert results["params"] == 64 * 10 + 10
    assert results["history"]["kd_weight"] == [pytest.approx(0.45)]  # warm-up: 1/2 of 0.9 in epoch 1
