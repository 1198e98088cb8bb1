"""Distillation terms: a pure function on tensors plus a `DistillationLoss`
class for each method."""

from keras_kd.losses.base import DistillationLoss, reduce_per_sample
from keras_kd.losses.features import FeatureMSE, feature_mse
from keras_kd.losses.logits import KD, kd_loss, kd_per_sample
from keras_kd.losses.hints import FitNet, hint_loss
from keras_kd.losses.fsp import FSP, fsp_loss, fsp_matrices, fsp_matrix
from keras_kd.losses.overhaul import (
    Overhaul,
    margin_relu,
    overhaul_margin,
    partial_l2_loss,
)
from keras_kd.losses.review import ABF, ReviewKD, hcl_loss
from keras_kd.losses.attention import (
    AttentionTransfer,
    attention_map,
    attention_transfer_loss,
)
from keras_kd.losses.relational import PKT, RKD, SP, pkt_loss, rkd_loss, sp_loss

__all__ = [
    "DistillationLoss",
    "FeatureMSE",
    "KD",
    "feature_mse",
    "kd_loss",
    "kd_per_sample",
    "reduce_per_sample",
    "FitNet",
    "hint_loss",
    "FSP",
    "fsp_loss",
    "fsp_matrices",
    "fsp_matrix",
    "Overhaul",
    "margin_relu",
    "overhaul_margin",
    "partial_l2_loss",
    "ABF",
    "ReviewKD",
    "hcl_loss",
    "AttentionTransfer",
    "attention_map",
    "attention_transfer_loss",
    "PKT",
    "RKD",
    "SP",
    "pkt_loss",
    "rkd_loss",
    "sp_loss",
]
from keras_kd.losses.decoupled import DKD, NKD, dkd_loss, dkd_per_sample, nkd_loss, nkd_per_sample  # noqa: E402
__all__ += ["DKD", "NKD", "dkd_loss", "dkd_per_sample", "nkd_loss", "nkd_per_sample"]  # noqa: E402
from keras_kd.teachers import MergedKD, merged_kd_loss  # noqa: E402
__all__ += ["MergedKD", "merged_kd_loss"]  # noqa: E402
from keras_kd.losses.standardization import standardize_logits  # noqa: E402
__all__ += ["standardize_logits"]  # noqa: E402
from keras_kd.losses.dist import DIST, dist_loss  # noqa: E402
__all__ += ["DIST", "dist_loss"]  # noqa: E402
