"""Training regimes as callbacks on an ordinary `fit`.

- `schedules` (`regimes/schedules.py`): loss-weight schedules (constant,
  linear warm-up, piecewise) and `LossWeightScheduler`, the one mechanism
  that changes term weights during training; two-stage training
  (`regimes/stages.py`: `Stage`, `Stages`) is built on it.
- `self_distillation` (`regimes/self_distillation.py`): a snapshot of the
  student as its own teacher, `SelfDistillation`, `born_again`.
- Semi-supervised training needs no callback: label −1 marks an unlabeled
  sample (`keras_kd.datasets.semi_supervised` builds such pipelines).
"""

from keras_kd.regimes import schedules, self_distillation, stages
from keras_kd.regimes.self_distillation import SelfDistillation, born_again
from keras_kd.regimes.stages import Stage, Stages

__all__ = [
    "SelfDistillation",
    "Stage",
    "Stages",
    "born_again",
    "schedules",
    "self_distillation",
    "stages",
]
