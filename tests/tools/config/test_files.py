"""Run-config files: YAML and TOML read alike, `--set` overrides, and
duplicate keys refused naming the key and its lines."""

import os

import pytest

from keras_kd.tools.config import validate as config
from tests.helpers.paths import ROOT

DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")


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


# ----------------------------------------------------------------------------
# Duplicate keys.
@pytest.mark.parametrize("name, text, message", [
    ("run.yaml", "epochs: 3\nseed: 1\nepochs: 5\n", r"key 'epochs' is given twice \(lines 1 and 3\)"),
    ("run.yaml", "dataset:\n  name: digits\n  batch_size: 8\n  batch_size: 16\n",
     r"key 'batch_size' is given twice \(lines 3 and 4\)"),
    ("run.toml", "epochs = 3\nseed = 1\nepochs = 5\n", r"key 'epochs' is given twice \(again at line 3\)"),
    ("run.toml", "[dataset]\nname = 'digits'\n[dataset]\nbatch_size = 8\n",
     r"key 'dataset' is given twice \(again at line 3\)"),
])
def test_duplicate_config_keys_raise_naming_key_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=message):
        config.read(path)


def test_yaml_merge_keys_may_still_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("base: &b {batch_size: 8}\ndataset:\n  <<: *b\n  batch_size: 16\n")
    assert config.read(path)["dataset"] == {"batch_size": 16}
