"""keras-kd: knowledge distillation for Keras 3 on TensorFlow."""

import os

# keras-kd's training steps are written for TensorFlow (tf.GradientTape).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_kd import (  # noqa: E402
    callbacks,
    datasets,
    distribute,
    losses,
    schedules,
    self_distillation,
    teachers,
    zoo,
)
from keras_kd.distiller import Distiller  # noqa: E402
from keras_kd.export import export_model  # noqa: E402
from keras_kd.self_distillation import born_again  # noqa: E402
from keras_kd.stages import Stage, Stages  # noqa: E402
from keras_kd.taps import ModelView  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Distiller",
    "ModelView",
    "Stage",
    "Stages",
    "born_again",
    "callbacks",
    "schedules",
    "self_distillation",
    "teachers",
    "datasets",
    "distribute",
    "export_model",
    "losses",
    "zoo",
    "__version__",
]
