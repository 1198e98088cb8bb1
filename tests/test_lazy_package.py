"""`import keras_kd` is lazy: nothing heavy is imported until a name is used,
and every `keras_kd.X` works as before (attribute, `import keras_kd.X`,
`from keras_kd import X`). A saved Distiller reloads after `import keras;
import keras_kd` without touching keras_kd first, and after `import
keras_kd; import keras` once any keras_kd name was used (Keras finds the
classes only once their modules ran: with `import keras_kd; import keras`
and nothing of keras_kd used before `load_model`, it does not)."""

import os
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.processes import subprocess_timeout


def _run(code, cwd=ROOT):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=subprocess_timeout())
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_import_keras_kd_imports_no_keras():
    out = _run("import sys, keras_kd\n"
               "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    assert out == "[]"


def test_every_name_of_the_top_level_loads_on_first_use():
    out = _run(
        "import sys, types, keras_kd\n"
        "assert 'keras_kd.losses' not in sys.modules\n"
        "kinds = {n: type(getattr(keras_kd, n)).__name__ for n in keras_kd.__all__}\n"
        "from keras_kd import losses, Distiller\n"
        "import keras_kd.taps.views\n"
        "assert losses is keras_kd.losses and Distiller is keras_kd.Distiller\n"
        "assert keras_kd.losses.KD.__module__ == 'keras_kd.losses.kd'\n"
        "assert set(dir(keras_kd)) >= set(keras_kd.__all__)\n"
        "try:\n"
        "    keras_kd.Stage\n"
        "except AttributeError as error:\n"
        "    assert 'no attribute' in str(error)\n"
        "else:\n"
        "    raise AssertionError('keras_kd.Stage was removed in 0.3')\n"
        "print(sorted(kinds.items()))")
    kinds = dict(eval(out))
    assert kinds.pop("Distiller") == "type" and kinds.pop("__version__") == "str"
    assert set(kinds.values()) == {"module"}
    assert sorted(kinds) == ["callbacks", "datasets", "distribute", "export", "losses",
                             "regimes", "taps", "teachers", "tools", "zoo"]


@pytest.mark.slow
def test_a_saved_distiller_reloads_after_import_keras_then_keras_kd(tmp_path):
    # Keras finds the registered classes only once their modules ran: with
    # Keras imported first, `import keras_kd` registers them at once.
    path = str(tmp_path / "distiller.keras")
    _run("import keras, keras_kd\n"
         "t = keras_kd.zoo.digits_student(name='t'); s = keras_kd.zoo.digits_student(name='s')\n"
         "keras_kd.Distiller(t, s, losses=[keras_kd.losses.KD(temperature=3)]).save("
         f"{path!r})\nprint('saved')")
    out = _run("import keras\nimport keras_kd\n"
               f"d = keras.saving.load_model({path!r})\n"
               "print(type(d).__name__, [type(t).__name__ for t in d.distillation_losses], "
               "d.distillation_losses[0].temperature)")
    assert out == "Distiller ['KD'] 3.0"
    # keras_kd first: the first use of any keras_kd name after Keras is
    # imported registers them all (here keras_kd.datasets, which needs no Keras).
    out = _run("import keras_kd\nimport keras\nkeras_kd.datasets\n"
               f"print(type(keras.saving.load_model({path!r})).__name__)")
    assert out == "Distiller"
