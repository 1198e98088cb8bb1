"""The import graph: the core imports no tools or zoo; validating a run
config needs no TensorFlow."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = float(os.environ.get("KERAS_KD_TEST_TIMEOUT", "900"))


def _python(code, backend="tensorflow"):
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if backend is None:
        env.pop("KERAS_BACKEND")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_core_imports_neither_the_tools_nor_the_zoo():
    out = _python(
        "import sys, keras_kd\n"
        "import keras_kd.distiller, keras_kd.losses, keras_kd.teachers, keras_kd.regimes\n"
        "import keras_kd.callbacks, keras_kd.export, keras_kd.datasets, keras_kd.taps\n"
        "print(sorted(m for m in sys.modules if m.startswith(('keras_kd.tools', 'keras_kd.zoo'))))\n"
        "import keras_kd.zoo\n"
        "print(sorted(m for m in sys.modules if m.startswith('keras_kd.tools')))\n"
    )
    assert out.splitlines() == ["[]", "[]"]


def test_validate_only_does_not_import_tensorflow():
    out = _python(
        "import sys\n"
        "sys.argv = ['keras-kd', 'distill', 'recipes/digits_kd.yaml', '--validate-only']\n"
        "from keras_kd.tools.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(code, 'tensorflow' in sys.modules)\n",
        backend=None,
    )
    assert out.splitlines()[-1] == "0 False", out


def test_old_module_paths_still_import_with_a_warning():
    out = _python(
        "import warnings\n"
        "import keras_kd\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    import keras_kd.bench, keras_kd.methods\n"
        "    from keras_kd import schedules\n"
        "import keras_kd.tools.bench, keras_kd.zoo.recipes\n"
        "print(keras_kd.bench is keras_kd.tools.bench, keras_kd.methods is keras_kd.zoo.recipes)\n"
        "print(sum('moved to' in str(w.message) for w in caught))\n"
    )
    assert out.splitlines()[-2:] == ["True True", "2"]


def test_old_check_modules_import_from_keras_kd_checks_with_a_warning():
    # The four check modules of 0.1 live in keras_kd.checks; validation.py
    # was split in three, so its old name reads from all three.
    out = _python(
        "import os, sys, warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    import keras_kd\n"
        "    for old in ('validation', 'scalars', 'compile_checks', 'guards'):\n"
        "        sys.modules.pop('keras_kd.' + old, None)\n"
        "    import keras_kd.scalars, keras_kd.compile_checks, keras_kd.guards\n"
        "    from keras_kd.validation import check_batch, check_fit_data, check_terms\n"
        "    import keras_kd.validation as validation\n"
        "from keras_kd.checks import batches, compile, data, guards, numbers, terms\n"
        "print(keras_kd.scalars is numbers, keras_kd.compile_checks is compile,\n"
        "      keras_kd.guards is guards)\n"
        "print(check_batch is batches.check_batch, check_fit_data is data.check_fit_data,\n"
        "      check_terms is terms.check_terms)\n"
        "print(sorted({str(w.message).split()[0] for w in caught if 'moved to' in str(w.message)}))\n"
        "try:\n"
        "    validation.no_such_check\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
        "print(sorted(m.__file__ for m in sys.modules.values()\n"
        "             if m.__name__.startswith('keras_kd') and getattr(m, '__file__', None)\n"
        "             and not m.__file__.startswith(os.getcwd())))\n"
    )
    lines = out.splitlines()
    assert lines[-5:-1] == [
        "True True True",
        "True True True",
        "['keras_kd.compile_checks', 'keras_kd.guards', 'keras_kd.scalars', "
        "'keras_kd.validation']",
        "module 'keras_kd.validation' has no attribute 'no_such_check'",
    ], out
    # Every keras_kd module comes from this checkout, none from a stale file
    # at an old path (the alias finder comes first).
    assert lines[-1] == "[]", out
