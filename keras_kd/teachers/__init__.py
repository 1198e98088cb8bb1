"""Teachers made of several models, and the teacher-output cache.

- `Ensemble([t1, t2, ...])` (`ensemble.py`): one teacher whose soft targets
  are the (weighted) arithmetic or geometric mean of the teachers'.
- `Merged({teacher_a: [classes], teacher_b: [classes]})` (`merged.py`):
  teachers of different class subsets teach one student over the union of
  their classes, with `keras_kd.losses.MergedKD`.
- `keras_kd.teachers.caching`: teacher outputs computed once per sample and
  view, replayed with their inputs (`caching.cache`, `caching.build`).

Feature taps address one member teacher as `"teacher_name/layer_name"`
(`group.py` explains how, in one forward pass per teacher).
"""

import importlib

from keras_kd.teachers.ensemble import Ensemble, EnsembleLogits, ensemble_logits
from keras_kd.teachers.merged import Merged


def __getattr__(name):
    # The cache is built on tf.data: loaded on first use, so that importing
    # keras_kd does not import TensorFlow on the JAX or PyTorch backend (or when only a
    # run config is validated).
    if name == "caching":
        return importlib.import_module("keras_kd.teachers.caching")
    raise AttributeError(f"module 'keras_kd.teachers' has no attribute {name!r}")


__all__ = ["Ensemble", "EnsembleLogits", "Merged", "ensemble_logits"]
