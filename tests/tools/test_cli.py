"""The keras-kd command line and its offline demo."""

import os

import pytest

from keras_kd.tools import cli
from keras_kd.tools import demo
from tests.helpers.paths import ROOT

DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")


def test_help_lists_the_demo(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2


def test_demo_flags_are_validated():
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])


def test_shipped_teacher_is_found():
    path = demo.find_teacher()
    assert path is not None and path.endswith(os.path.join("saved_models", "digits_teacher.keras"))


@pytest.mark.slow
def test_demo_runs_end_to_end_offline(tmp_path, capsys):
    results = demo.run(epochs=2, output_dir=str(tmp_path), verbose=0)
    out = capsys.readouterr().out
    assert "| teacher |" in out and "| distilled student |" in out
    assert results["teacher"]["accuracy"] > 0.95  # the shipped teacher
    assert results["distilled student"]["params"] < results["teacher"]["params"] / 50
    run_dir = results["run_dir"]
    assert os.path.isdir(os.path.join(run_dir, "student_savedmodel"))
    assert os.path.isfile(os.path.join(run_dir, "student.keras"))
    assert os.listdir(os.path.join(run_dir, "tensorboard", "distilled", "train"))
    # A second run never writes into the first one.
    again = demo.run(epochs=1, output_dir=str(tmp_path), verbose=0)
    assert again["run_dir"] != run_dir


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
