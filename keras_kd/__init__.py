"""keras-kd: knowledge distillation for Keras 3 (TensorFlow and JAX backends).

`keras_kd.Distiller` is the one name at the top level; everything else has
one public path in a subpackage:

- `keras_kd.losses`: the distillation terms (a pure function beside a thin
  class for each method) and `DistillationLoss`, the base of your own.
- `keras_kd.taps`: one-pass views of the models (`ModelView`).
- `keras_kd.teachers`: ensembles and merged label spaces;
  `keras_kd.teachers.caching`: teacher outputs computed once and replayed.
- `keras_kd.regimes`: two-stage training, self-distillation;
  `keras_kd.regimes.schedules`: every weight that moves.
- `keras_kd.callbacks`, `keras_kd.datasets`, `keras_kd.export`.
- `keras_kd.zoo`: example models with named taps and ready-made recipes;
  `keras_kd.tools`: the `keras-kd` command. The core never imports either.
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

from keras_kd import callbacks, datasets, export, losses, regimes, taps, teachers  # noqa: E402
from keras_kd.distiller import Distiller  # noqa: E402

__version__ = "0.3.0"


def __getattr__(name):
    # Loaded when first used: `keras_kd.zoo` (example models and recipes,
    # built on the core, which never imports it), `keras_kd.tools` and
    # `keras_kd.distribute` (tf.distribute helpers, which import TensorFlow).
    if name in ("zoo", "tools", "distribute"):
        return importlib.import_module(f"keras_kd.{name}")
    raise AttributeError(f"module 'keras_kd' has no attribute {name!r}")


__all__ = [
    "Distiller",
    "callbacks",
    "datasets",
    "distribute",
    "export",
    "losses",
    "regimes",
    "taps",
    "teachers",
    "tools",
    "zoo",
    "__version__",
]
