"""Distillation terms: for each method a pure function on tensors beside a
`DistillationLoss` class, as Keras pairs `categorical_crossentropy` with
`CategoricalCrossentropy`.

Each method has one function, `<name>_loss`. Like Keras's loss functions it
returns one value per sample, shape `(batch,)`, which the class averages
with the batch's `sample_weight`; the batch-level losses that compare the
samples of a batch with each other (`rkd_loss`, `pkt_loss`, `sp_loss`,
`dist_loss`) return one scalar per batch, which `sample_weight` does not
weight. The 0.1 names (`kd_per_sample`, `dkd_per_sample`, `feature_mse`,
...) still import, with a DeprecationWarning, until 0.3.
"""

from keras_kd.losses import registry
from keras_kd.losses.base import DistillationLoss, reduce_per_sample
from keras_kd.losses.features import FeatureMSE, feature_mse_loss
from keras_kd.losses.logits import KD, kd_loss
from keras_kd.losses.hints import FitNet, hint_loss
from keras_kd.losses.fsp import FSP, fsp_loss, fsp_matrices, fsp_matrix
from keras_kd.losses.overhaul import Overhaul, partial_l2_loss
from keras_kd.losses.overhaul_margins import margin_relu, overhaul_margin
from keras_kd.losses.review import ABF, ReviewKD, hcl_loss
from keras_kd.losses.attention import (
    AttentionTransfer,
    attention_map,
    attention_transfer_loss,
)
from keras_kd.losses.relational import PKT, RKD, SP, pkt_loss, rkd_loss, sp_loss
from keras_kd.losses.decoupled import DKD, NKD, dkd_loss, nkd_loss
from keras_kd.losses.merged import MergedKD, merged_kd_loss
from keras_kd.losses.standardization import standardize_logits
from keras_kd.losses.dist import DIST, dist_loss
from keras_kd.losses.cwd import CWD, cwd_loss
from keras_kd.losses.on_output import OnOutput, on_output
from keras_kd.losses.from_keras import from_keras
from keras_kd.losses.topk import TopKKD, topk_kd_loss

# The 0.1 names of the functions above, deprecated (they warn), until 0.3.
from keras_kd.losses.attention import attention_transfer_per_sample  # noqa: F401, E402
from keras_kd.losses.cwd import cwd_per_sample  # noqa: F401, E402
from keras_kd.losses.dkd import dkd_per_sample  # noqa: F401, E402
from keras_kd.losses.features import feature_mse, feature_mse_per_sample  # noqa: F401, E402
from keras_kd.losses.hints import hint_loss_per_sample  # noqa: F401, E402
from keras_kd.losses.logits import kd_per_sample  # noqa: F401, E402
from keras_kd.losses.merged import merged_kd_per_sample  # noqa: F401, E402
from keras_kd.losses.nkd import nkd_per_sample  # noqa: F401, E402
from keras_kd.losses.overhaul import partial_l2_per_sample  # noqa: F401, E402
from keras_kd.losses.review import hcl_per_sample  # noqa: F401, E402
from keras_kd.losses.topk import topk_kd_per_sample  # noqa: F401, E402

__all__ = [
    "DistillationLoss",
    "registry",
    "reduce_per_sample",
    # classes and their functions
    "KD", "kd_loss",
    "DKD", "dkd_loss",
    "NKD", "nkd_loss",
    "DIST", "dist_loss",
    "MergedKD", "merged_kd_loss",
    "TopKKD", "topk_kd_loss",
    "CWD", "cwd_loss",
    "FeatureMSE", "feature_mse_loss",
    "FitNet", "hint_loss",
    "FSP", "fsp_loss",
    "Overhaul", "partial_l2_loss",
    "ReviewKD", "hcl_loss",
    "AttentionTransfer", "attention_transfer_loss",
    "RKD", "rkd_loss",
    "PKT", "pkt_loss",
    "SP", "sp_loss",
    "OnOutput", "on_output",
    "from_keras",
    # building blocks
    "ABF",
    "attention_map",
    "fsp_matrices",
    "fsp_matrix",
    "margin_relu",
    "overhaul_margin",
    "standardize_logits",
]
