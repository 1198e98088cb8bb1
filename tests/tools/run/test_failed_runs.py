"""A `keras-kd distill` run that fails at run time prints ONE line (the
error and the path of a log holding the traceback), and what it left in its
output folder does not stop the corrected command."""

import os
import sys

import pytest

from keras_kd.tools import cli
from keras_kd.tools.run.output import CONFIG_COPY, ERROR_LOG, RESULTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")
TEACHER = os.path.join(ROOT, "saved_models", "digits_teacher.keras")

FAILING_STUDENT = '''
def student():
    raise RuntimeError("the student could not be built: out of coffee")
'''


@pytest.fixture
def failing_student(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kd_failing_student.py").write_text(FAILING_STUDENT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the run makes the cwd importable
    yield "kd_failing_student:student"
    sys.modules.pop("kd_failing_student", None)


def _distill(*extra):
    return cli.main(["distill", DIGITS, "--quiet", "--epochs", "1", "--output-dir", "run",
                     "--set", f"teacher={TEACHER}", "--set", "export.formats=[keras]", *extra])


@pytest.mark.slow
def test_a_failed_run_prints_one_line_and_the_corrected_run_is_not_blocked(
        failing_student, tmp_path, capsys):
    assert _distill("--set", f"student={failing_student}") == 1
    err = capsys.readouterr().err
    log = os.path.join("run", ERROR_LOG)
    assert err.splitlines() == [
        "keras-kd distill: RuntimeError: the student could not be built: out of coffee "
        f"(full traceback: {log})"]
    text = open(log).read()
    assert text.startswith("Traceback") and "out of coffee" in text and "kd_failing_student" in text
    # What it left: the config copy, the log, and maybe its TensorBoard logs/.
    assert set(os.listdir("run")) - {"logs"} == {CONFIG_COPY, ERROR_LOG}

    # The corrected command: another config in the same folder, not refused.
    assert _distill() == 0
    out, err = capsys.readouterr()
    assert "stopped before finishing an epoch" in out and err == ""
    assert os.path.isfile(os.path.join("run", RESULTS)) and not os.path.exists(log)
    assert os.path.isfile(os.path.join("run", "student.keras"))

    # A run that trained is never replaced by another config without --overwrite.
    assert _distill("--set", "seed=7") == 2
    assert "holds a run of a different config" in capsys.readouterr().err


def test_an_error_outside_any_output_folder_is_logged_in_a_temporary_file(capsys):
    try:
        raise ValueError("first line\nsecond line")
    except ValueError as error:
        assert cli._failed("bench", error, output_dir=None) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("keras-kd bench: ValueError: first line (full traceback: ")
    log = line.rsplit("(full traceback: ", 1)[1].rstrip(")")
    try:
        assert "second line" in open(log).read()
    finally:
        os.remove(log)
