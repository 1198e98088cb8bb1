"""keras-kd: knowledge distillation for Keras 3 (TensorFlow and JAX backends).

The library core is this package: `Distiller`, `losses`, `teachers`, the
training `regimes`, `taps`, `callbacks`, `datasets` and `export`. The example
models and ready-made recipes live in `keras_kd.zoo`; the command line, run
configs, bench and demo in `keras_kd.tools`, which the core never imports.
"""

import importlib
import os
import sys

# `keras-kd distill CONFIG --validate-only` builds no tensor: it only checks
# the file and instantiates the terms. Keras's numpy backend does that
# without importing TensorFlow (seconds instead of tens of seconds); any
# backend the user chose explicitly is kept.
if os.path.basename(sys.argv[0]) == "keras-kd" and "--validate-only" in sys.argv[1:]:
    os.environ.setdefault("KERAS_BACKEND", "numpy")

from keras_kd import _aliases  # noqa: E402

# First: a module being moved may still import another by its old name.
_aliases.install()

from keras_kd import callbacks, datasets, losses, regimes, teachers  # noqa: E402
from keras_kd.distiller import Distiller  # noqa: E402
from keras_kd.export import export_model  # noqa: E402
from keras_kd.regimes import schedules, self_distillation  # noqa: E402
from keras_kd.regimes.self_distillation import born_again  # noqa: E402
from keras_kd.regimes.stages import Stage, Stages  # noqa: E402
from keras_kd.taps import ModelView  # noqa: E402


def __getattr__(name):
    # Loaded when first used: `keras_kd.zoo` (example models and recipes,
    # built on the core, which never imports it) and `keras_kd.distribute`
    # (tf.distribute helpers, which import TensorFlow).
    if name in ("zoo", "distribute"):
        return importlib.import_module(f"keras_kd.{name}")
    raise AttributeError(f"module 'keras_kd' has no attribute {name!r}")

__version__ = "0.2.0"

__all__ = [
    "Distiller",
    "ModelView",
    "Stage",
    "Stages",
    "born_again",
    "callbacks",
    "datasets",
    "distribute",
    "export_model",
    "losses",
    "regimes",
    "schedules",
    "self_distillation",
    "teachers",
    "zoo",
    "__version__",
]
