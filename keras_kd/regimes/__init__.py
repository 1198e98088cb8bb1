"""Training regimes as callbacks on an ordinary `fit`.

- `schedules.py`: loss-weight schedules (`Constant`, `LinearWarmup`,
  `Piecewise`) and `LossWeightScheduler`, the one mechanism that changes
  term weights during training (`keras_kd.regimes.schedules`).
- `stages.py`: two-stage training (`Stage`, `Stages`), built on it.
- `self_distillation.py`: a snapshot of the student as its own teacher
  (`SelfDistillation`, `self_distiller`, `born_again`).
- Semi-supervised training needs no callback: label −1 marks an unlabeled
  sample (`keras_kd.datasets.semi_supervised` builds such pipelines).
"""

from keras_kd.regimes import schedules
from keras_kd.regimes.self_distillation import SelfDistillation, born_again, self_distiller
from keras_kd.regimes.stages import Stage, Stages

__all__ = ["SelfDistillation", "Stage", "Stages", "born_again", "schedules", "self_distiller"]
