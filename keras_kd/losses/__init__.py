"""Distillation terms: for each method a pure function on tensors beside a
`DistillationLoss` class, as Keras pairs `categorical_crossentropy` with
`CategoricalCrossentropy`. One module per method, named after it
(`kd.py`, `dkd.py`, `fitnet.py`, ...); helpers shared by several methods
are private modules (`_ops.py`, `_pair.py`, `_dense.py`, `_targets.py`).

Each method has one function, `<name>_loss`. Like Keras's loss functions it
returns one value per sample, shape `(batch,)`, which the class averages
with the batch's `sample_weight` (the token-level divergences `kd_loss`,
`reverse_kl_loss`, `generalized_jsd_loss`, `skew_kl_loss` and `tvd_loss`
return one value per position of `(batch, time, vocab)` logits with
`per_position=True`, and take `chunk_size` for large vocabularies); the batch-level losses that compare the
samples of a batch with each other (`rkd_loss`, `pkt_loss`, `sp_loss`,
`dist_loss`, `mlkd_loss`) return one scalar per batch, which `sample_weight`
does not weight. Every term is registered by name (`register_term`) for run configs.
"""

from keras_kd.losses import registry
from keras_kd.losses.attention_transfer import (
    AttentionTransfer,
    attention_map,
    attention_transfer_loss,
)
from keras_kd.losses.base import DistillationLoss, LogitLossWrapper, reduce_per_sample
from keras_kd.losses.cwd import CWD, cwd_loss
from keras_kd.losses.dist import DIST, dist_loss
from keras_kd.losses.dkd import DKD, dkd_loss
from keras_kd.losses.feature_mse import FeatureMSE, feature_mse_loss
from keras_kd.losses.fitnet import FitNet, hint_loss
from keras_kd.losses.from_keras import from_keras
from keras_kd.losses.fsp import FSP, fsp_loss, fsp_matrices, fsp_matrix
from keras_kd.losses.generalized_jsd import GeneralizedJSD, generalized_jsd_loss
from keras_kd.losses.kd import KD, kd_loss
from keras_kd.losses.logit_standardization import standardize_logits
from keras_kd.losses.merged_kd import MergedKD, merged_kd_loss
from keras_kd.losses.mlkd import MLKD, mlkd_loss
from keras_kd.losses.nkd import NKD, nkd_loss
from keras_kd.losses.on_output import OnOutput, on_output
from keras_kd.losses.overhaul import Overhaul, margin_relu, overhaul_margin, partial_l2_loss
from keras_kd.losses.pkt import PKT, pkt_loss
from keras_kd.losses.registry import register_term
from keras_kd.losses.reverse_kl import ReverseKL, reverse_kl_loss
from keras_kd.losses.review import ABF, ReviewKD, hcl_loss
from keras_kd.losses.rkd import RKD, rkd_loss
from keras_kd.losses.skew_kl import SkewKL, skew_kl_loss
from keras_kd.losses.sp import SP, sp_loss
from keras_kd.losses.topk_kd import TopKKD, topk_kd_loss
from keras_kd.losses.ttm import TTM, WTTM, ttm_loss, wttm_loss
from keras_kd.losses.tvd import TVD, tvd_loss

__all__ = [
    "DistillationLoss",
    "LogitLossWrapper",
    "register_term",
    "registry",
    "reduce_per_sample",
    # classes and their functions
    "KD", "kd_loss",
    "DKD", "dkd_loss",
    "NKD", "nkd_loss",
    "DIST", "dist_loss",
    "MLKD", "mlkd_loss",
    "TTM", "ttm_loss",
    "WTTM", "wttm_loss",
    "MergedKD", "merged_kd_loss",
    "TopKKD", "topk_kd_loss",
    # token-level divergences for language models
    "ReverseKL", "reverse_kl_loss",
    "GeneralizedJSD", "generalized_jsd_loss",
    "SkewKL", "skew_kl_loss",
    "TVD", "tvd_loss",
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
