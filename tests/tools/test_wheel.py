"""The wheel works from any folder: `python -m build` packs the embedded
digits and the shipped teachers; installed in a fresh virtual environment,
`keras-kd demo` and the getting-started snippet (tests/test_readme_snippet.py)
run from an empty folder and use the teachers inside the installed package.

The environment shares this interpreter's site-packages (TensorFlow is not
reinstalled), so the test checks that `keras_kd` is imported from the wheel,
not from this checkout. It builds from a copy of the package, so the
checkout gets no build/ or .egg-info folder. About a minute on an idle
machine; TensorFlow pass only.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.processes import subprocess_timeout
from tests.test_readme_snippet import SNIPPET

pytestmark = [pytest.mark.slow, pytest.mark.tensorflow_only]

PACKAGED = ("keras_kd/data/digits_teacher.keras", "keras_kd/data/fashion_mnist_teacher.keras",
            "keras_kd/data/digits.csv.gz", "keras_kd/data/DIGITS_LICENSE.txt")


def _run(command, cwd, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for name in ("PYTHONPATH", "KERAS_BACKEND"):
        env.pop(name, None)
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=subprocess_timeout(), **kwargs)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of this checkout's package files."""
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    shutil.copytree(os.path.join(ROOT, "keras_kd"), source / "keras_kd",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    # Run from the empty output folder: `-m build` must find the build
    # package, not a folder named build/ where it runs.
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
          str(source)], cwd=dist)
    (built,) = [f for f in os.listdir(dist) if f.endswith(".whl")]
    return str(dist / built)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtual environment (with this interpreter's packages) holding the wheel."""
    folder = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
         cwd=folder)
    python = str(folder / "bin" / "python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--ignore-installed", "--quiet", wheel], cwd=folder)
    return folder


def test_the_wheel_holds_the_data_and_the_teachers(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(PACKAGED) <= names, sorted(n for n in names if "/data/" in n)
        for name in ("digits_teacher.keras", "fashion_mnist_teacher.keras"):
            with open(os.path.join(ROOT, "saved_models", name), "rb") as handle:
                # the same teachers as the repository's
                assert archive.read(f"keras_kd/data/{name}") == handle.read()


def test_demo_and_the_readme_snippet_run_from_an_empty_folder(venv, tmp_path):
    package = os.path.join(str(venv), "lib", f"python{sys.version_info.major}."
                           f"{sys.version_info.minor}", "site-packages", "keras_kd")
    python = str(venv / "bin" / "python")
    work = tmp_path / "empty"
    work.mkdir()
    where = _run([python, "-c", "import keras_kd; print(keras_kd.__file__)"], cwd=work)
    assert where.strip() == os.path.join(package, "__init__.py")  # the wheel's, not the checkout's

    assert _run([str(venv / "bin" / "keras-kd"), "--version"], cwd=work).strip().startswith(
        "keras-kd ")
    out = _run([str(venv / "bin" / "keras-kd"), "demo", "--epochs", "1", "--quiet",
                "--output-dir", "kd_demo"], cwd=work)
    assert f"Teacher: {os.path.join(package, 'data', 'digits_teacher.keras')}" in out, out
    assert "training the teacher first" not in out
    assert "| distilled student |" in out

    # The getting-started snippet, for 1 epoch instead of 10; and the
    # README's Fashion-MNIST teacher loads from the package too.
    snippet = SNIPPET.replace("epochs=10", "epochs=1")
    assert snippet != SNIPPET
    out = _run([python, "-c", snippet + "\nteacher = keras_kd.zoo.load_trained("
                "'fashion_mnist_teacher.keras')\nprint(teacher.name, teacher.count_params())"],
               cwd=work)
    assert "student test accuracy: " in out
    assert out.strip().splitlines()[-1] == "fmnist_teacher 121946"
    assert os.path.isfile(work / "runs" / "kd" / "student.keras")
    assert sorted(os.listdir(work)) == ["kd_demo", "runs"]  # no saved_models/ was needed
