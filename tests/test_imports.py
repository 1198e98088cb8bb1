"""The import graph: the core imports no tools or zoo; validating a run
config needs no TensorFlow."""

import os
import subprocess
import sys

from tests.helpers.paths import ROOT

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
        "import keras_kd.callbacks, keras_kd.export, keras_kd.datasets, keras_kd.taps.views\n"
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
