"""`keras-kd --help`, each command's `--help` and `--version` import neither
Keras nor TensorFlow (the package is lazy; each command's flags live in a
module of their own). Checked in a fresh interpreter through `sys.modules`,
not timed: benchmarks/cli_startup.py times it."""

import json
import os
import subprocess
import sys

import pytest

import keras_kd
from tests.helpers.paths import ROOT
from tests.helpers.processes import subprocess_timeout

HEAVY = ("keras", "tensorflow", "jax", "tensorflow_datasets", "numpy")

# Runs the CLI's main() with `argv`, then prints which heavy modules were
# imported (argparse exits through SystemExit for --help/--version).
_PROBE = """
import json, sys
from keras_kd.tools import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _probe(*argv):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + _PROBE, *argv],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=subprocess_timeout())
    assert done.returncode == 0, done.stderr[-2000:]
    *printed, last = done.stdout.strip().splitlines()
    return json.loads(last), "\n".join(printed)


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["distill", "--help"],
                                  ["bench", "--help"], ["tune", "--help"], ["--version"]])
def test_help_and_version_import_no_keras(argv):
    result, printed = _probe(*argv)
    assert result == {"code": 0, "heavy": []}, result
    if argv == ["--version"]:
        assert printed == f"keras-kd {keras_kd.__version__}"
    else:
        assert "usage: keras-kd" in printed


def test_the_probe_sees_keras_when_a_command_imports_it():
    # The check above must be able to fail: a command that runs imports Keras.
    result, _ = _probe("distill", os.path.join(ROOT, "recipes", "digits_kd.yaml"),
                       "--validate-only")
    assert result["code"] == 0 and "keras" in result["heavy"], result


def test_version_is_the_packages():
    import re

    setup = open(os.path.join(ROOT, "setup.cfg")).read()
    assert "version = attr: keras_kd.__version__" in setup
    assert re.fullmatch(r"\d+\.\d+\.\d+", keras_kd.__version__)


def test_bench_and_tune_check_method_names_with_a_suggestion(capsys):
    from keras_kd.tools import cli

    assert cli.main(["tune", "--method", "kdd", "--dataset", "digits",
                     "--student", "digits_student"]) == 2
    err = capsys.readouterr().err
    assert "Unknown method 'kdd'; did you mean 'kd'?" in err and "Traceback" not in err
