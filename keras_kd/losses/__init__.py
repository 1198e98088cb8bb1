"""Distillation terms: a pure function on tensors plus a `DistillationLoss`
class for each method."""

from keras_kd.losses.base import DistillationLoss, reduce_per_sample
from keras_kd.losses.features import FeatureMSE, feature_mse
from keras_kd.losses.logits import KD, kd_loss, kd_per_sample

__all__ = [
    "DistillationLoss",
    "FeatureMSE",
    "KD",
    "feature_mse",
    "kd_loss",
    "kd_per_sample",
    "reduce_per_sample",
]
