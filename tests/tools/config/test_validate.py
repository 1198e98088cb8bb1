"""Run-config validation (`keras-kd distill CONFIG`): every problem reported at
once, each naming its key; the defaults filled in. Files and overrides:
test_files.py; real runs: tests/tools/run/test_runner.py."""

import os

import pytest

from keras_kd.tools.config import validate as config


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
