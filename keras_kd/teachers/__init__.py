"""Teachers made of several models, and the teacher-output cache.

- `Ensemble([t1, t2, ...])` (`teachers/ensemble.py`): one teacher whose soft
  targets are the (weighted) arithmetic or geometric mean of the teachers'.
- `Merged({teacher_a: [classes], teacher_b: [classes]})`
  (`teachers/merged.py`): teachers of different class subsets teach one
  student over the union of their classes, with `keras_kd.losses.MergedKD`.
- `cache(teacher, dataset, ...)` (`teachers/caching.py`): teacher outputs
  computed once per sample and view, replayed with their inputs (by index
  from memory, or zipped with the dataset when the inputs are large);
  `Mixup` views mix sample pairs (`teachers/cache_mixup.py`).

Feature taps address one member teacher as `"teacher_name/layer_name"`
(`teachers/group.py` explains how, in one forward pass per teacher).
"""

import importlib

from keras_kd.losses.merged import MergedKD, merged_kd_loss, merged_kd_per_sample  # noqa: F401
from keras_kd.teachers.ensemble import Ensemble, EnsembleLogits, ensemble_logits
from keras_kd.teachers.merged import Merged

# `MergedKD` and its functions live in `keras_kd.losses` (every loss does);
# they stay importable from here, where they were before 0.2
# (`merged_kd_per_sample`, deprecated, until 0.3).


def __getattr__(name):
    # The cache is built on tf.data: loaded on first use, so that importing
    # keras_kd does not import TensorFlow on the JAX backend (or when only a
    # run config is validated).
    if name in ("cache", "build", "crop_flip", "Mixup", "TeacherCache", "caching"):
        caching = importlib.import_module("keras_kd.teachers.caching")
        return caching if name == "caching" else getattr(caching, name)
    if name in ("CropFlip", "with_batched"):
        return getattr(importlib.import_module("keras_kd.teachers.augment"), name)
    raise AttributeError(f"module 'keras_kd.teachers' has no attribute {name!r}")


__all__ = [
    "CropFlip",
    "Ensemble",
    "EnsembleLogits",
    "Merged",
    "MergedKD",
    "Mixup",
    "TeacherCache",
    "build",
    "cache",
    "crop_flip",
    "ensemble_logits",
    "merged_kd_loss",
    "with_batched",
]
