"""keras-kd: knowledge distillation for Keras 3 on TensorFlow."""

import os

# keras-kd's training steps are written for TensorFlow (tf.GradientTape).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from keras_kd import callbacks, datasets, losses, zoo  # noqa: E402
from keras_kd.distiller import Distiller  # noqa: E402
from keras_kd.export import export_model  # noqa: E402
from keras_kd.stages import Stage, Stages  # noqa: E402
from keras_kd.taps import ModelView  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Distiller",
    "ModelView",
    "Stage",
    "Stages",
    "callbacks",
    "datasets",
    "export_model",
    "losses",
    "zoo",
    "__version__",
]
