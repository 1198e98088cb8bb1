"""Loss-weight schedules: change the terms' weights between epochs or steps.

Every `DistillationLoss` keeps its weight in a non-trainable variable, and so
does the Distiller's `student_loss_weight`; the compiled train step reads the
variables, so assigning new values between steps changes the objective
WITHOUT retracing (or recompiling under XLA).

- A schedule is a small serializable object, `schedule(epoch, step=None)`
  -> float: `Constant`, `LinearWarmup`, `Piecewise`, or any callable with
  that signature (e.g. a lambda). `epoch` is Keras's 0-based epoch index
  (fractional within an epoch when the scheduler runs per step: epoch +
  batch / steps_per_epoch); `step` is the global step index when the
  scheduler runs per step (None per epoch).
- `LossWeightScheduler({...})` is the `keras.callbacks.Callback` that
  evaluates the schedules and assigns the weights, and writes the weights
  in use into the epoch logs as `"<name>_weight"` (History, TensorBoard).
- Every schedule is well-defined past its end: it holds its last value
  (`LinearWarmup` stays at `target`, `Piecewise` at its last value).
  Negative or non-finite values are refused (ValueError), at construction
  for the built-in schedules and when assigned for a custom callable.

Example, a two-stage regime (hints only for 5 epochs, then the task with KD
warmed up over 3 epochs):

```python
hint = keras_kd.losses.FitNet("conv3", "conv2", name="hint")
kd = keras_kd.losses.KD(temperature=4)
distiller = keras_kd.Distiller(teacher, student, losses=[hint, kd])
distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
scheduler = keras_kd.regimes.schedules.LossWeightScheduler({
    "hint": keras_kd.regimes.schedules.Piecewise([5], [1.0, 0.0]),
    "kd": keras_kd.regimes.schedules.Piecewise([5], [0.0, 1.0]),
    "student_loss": keras_kd.regimes.schedules.Piecewise([5], [0.0, 1.0]),
})
distiller.fit(train_ds, epochs=20, callbacks=[scheduler])
```

The schedules themselves are in `weight_schedules.py`, the callback in
`loss_weight_scheduler.py`; this module gathers both under one name.
"""

from keras_kd.regimes.loss_weight_scheduler import (
    STUDENT_LOSS,
    LossWeightScheduler,
    with_default_schedules,
)
from keras_kd.regimes.weight_schedules import (
    Constant,
    LinearWarmup,
    Piecewise,
    Schedule,
    get,
)

__all__ = [
    "Constant",
    "LinearWarmup",
    "LossWeightScheduler",
    "STUDENT_LOSS",
    "Piecewise",
    "Schedule",
    "get",
    "with_default_schedules",
]
