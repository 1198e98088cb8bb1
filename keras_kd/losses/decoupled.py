"""Logit distillation that treats the ground-truth class apart from the rest.

- DKD (`keras_kd.losses.dkd`): Zhao et al. 2022, "Decoupled Knowledge
  Distillation" (CVPR 2022); conventions of mdistiller.
- NKD (`keras_kd.losses.nkd`): Yang et al. 2023, "From Knowledge
  Distillation to Self-Knowledge Distillation" (ICCV 2023); conventions of
  the authors' `NKDLoss` (yzd-v/cls_KD).

Both need the labels: they split the classes into the target (ground-truth)
class and the non-target classes. Labels may be sparse integers `(batch,)`
or `(batch, 1)`, or one-hot / soft `(batch, classes)` rows (their argmax is
the target, as in the NKD code); dense logits `(batch, H, W, classes)` take
label maps `(batch, H, W)`. Everything is computed in float32 with
`log_softmax` / `logsumexp`, so it is exact under `mixed_float16` and
compiles under XLA (the non-target columns are gathered with static shapes).

This module keeps the historical import path; the code lives in `dkd.py`,
`nkd.py` and `_targets.py`.
"""

from keras_kd.losses._targets import non_target, sparse_labels
# dkd_per_sample / nkd_per_sample: the 0.1 names of dkd_loss / nkd_loss,
# deprecated, importable until 0.3.
from keras_kd.losses.dkd import DKD, dkd_loss, dkd_per_sample  # noqa: F401
from keras_kd.losses.nkd import NKD, nkd_loss, nkd_per_sample  # noqa: F401

__all__ = [
    "DKD",
    "NKD",
    "dkd_loss",
    "nkd_loss",
    "non_target",
    "sparse_labels",
]
