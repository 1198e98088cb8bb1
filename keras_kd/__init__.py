"""keras-kd: knowledge distillation for Keras 3 (TensorFlow and JAX backends).

The library core is this package: `Distiller`, `losses`, `teachers`, the
training `regimes`, `taps`, `callbacks`, `datasets` and `export`. The example
models and ready-made recipes live in `keras_kd.zoo`; the command line, run
configs, bench and demo in `keras_kd.tools`, which the core never imports.
"""

from keras_kd import _aliases
from keras_kd import callbacks, datasets, distribute, losses, regimes, teachers, zoo
from keras_kd.distiller import Distiller
from keras_kd.export import export_model
from keras_kd.regimes import schedules, self_distillation
from keras_kd.regimes.self_distillation import born_again
from keras_kd.regimes.stages import Stage, Stages
from keras_kd.taps import ModelView

_aliases.install()

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
