"""Loss-weight schedules: a weight as a function of the epoch (and step).

`schedule(epoch, step=None) -> float`: `Constant`, `LinearWarmup`,
`Piecewise`, or any callable with that signature; `get` turns a number, a
schedule, a callable or a serialized config into one. Each is a small
serializable object (registered as `keras_kd>Constant`, ...), well-defined
past its end, and refuses negative or non-finite values at construction.
`keras_kd.regimes.loss_weight_scheduler.LossWeightScheduler` applies them.
"""

import math

import keras

from keras_kd.losses.base import check_weight
from keras_kd.checks.numbers import is_real


def _check_number(value, what, minimum=0.0, strict=False):
    if not is_real(value):
        raise TypeError(f"{what} must be a number, got {value!r}.")
    value = float(value)
    bad = value <= minimum if strict else value < minimum
    if not math.isfinite(value) or bad:
        sign = ">" if strict else ">="
        raise ValueError(f"{what} must be a finite number {sign} {minimum}, got {value}.")
    return value


def _as_int_if_whole(value):
    return int(value) if float(value).is_integer() else value


class Schedule:
    """Base class: `schedule(epoch, step=None)` -> a weight >= 0.

    `epoch` is the 0-based epoch index (a float within an epoch when the
    scheduler runs per step), `step` the global step (per-step only).
    Subclasses implement `__call__` and `get_config`.
    """

    def __call__(self, epoch, step=None):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="keras_kd")
class Constant(Schedule):
    """The same weight every epoch.

    Example:

    >>> Constant(0.5)(epoch=7)
    0.5
    """

    def __init__(self, value):
        self.value = check_weight(value, "Constant's value")

    def __call__(self, epoch, step=None):
        return self.value

    def get_config(self):
        return {"value": self.value}


@keras.saving.register_keras_serializable(package="keras_kd")
class LinearWarmup(Schedule):
    """Linear ramp from `start` to `target` over `warmup_epochs`, then `target`.

    Epochs are counted from 1 as in DKD's code (mdistiller:
    `min(epoch / warmup, 1)` with a 1-based epoch), so Keras's 0-based epoch
    e trains with

        start + (target − start) · min((e + 1) / warmup_epochs, 1)

    With start = 0 and warmup_epochs = 4: epochs 0, 1, 2, 3, 4, … train with
    0.25, 0.5, 0.75, 1, 1, … × target. Past the warm-up the value holds at
    `target` forever. Per step, e is fractional (epoch + batch / steps), so
    the weight rises smoothly through each epoch. `warmup_epochs=0` is
    `Constant(target)`.

    Args:
        target: the weight after the warm-up (>= 0).
        warmup_epochs: length of the ramp in epochs (>= 0).
        start: the ramp's origin, the value "before epoch 1" (>= 0).

    Example:

    >>> [LinearWarmup(1.0, 4)(e) for e in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """

    def __init__(self, target, warmup_epochs, start=0.0):
        self.target = check_weight(target, "LinearWarmup's target")
        self.warmup_epochs = _as_int_if_whole(
            _check_number(warmup_epochs, "LinearWarmup's warmup_epochs")
        )
        self.start = check_weight(start, "LinearWarmup's start")

    def __call__(self, epoch, step=None):
        if not self.warmup_epochs:
            return self.target
        fraction = min(max((float(epoch) + 1.0) / self.warmup_epochs, 0.0), 1.0)
        return self.start + (self.target - self.start) * fraction

    def get_config(self):
        return {
            "target": self.target,
            "warmup_epochs": self.warmup_epochs,
            "start": self.start,
        }


@keras.saving.register_keras_serializable(package="keras_kd")
class Piecewise(Schedule):
    """Stages: `values[i]` from epoch `boundaries[i-1]` until `boundaries[i]`.

    With boundaries [e1, e2] and values [v0, v1, v2]: epochs 0 … e1−1 train
    with v0, epochs e1 … e2−1 with v1, epoch e2 and later with v2 (the last
    value holds forever). A boundary is the first epoch of the next stage
    (unlike `keras.optimizers.schedules.PiecewiseConstantDecay`, whose
    boundary step still belongs to the earlier stage).

    Args:
        boundaries: strictly increasing epoch indices (>= 0).
        values: one more weight than boundaries, each >= 0.

    Example:

    >>> [Piecewise([2, 4], [1.0, 0.5, 0.0])(e) for e in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.0, 0.0]
    """

    def __init__(self, boundaries, values):
        if not isinstance(boundaries, (list, tuple)) or not isinstance(
            values, (list, tuple)
        ):
            raise TypeError(
                "Piecewise needs lists: boundaries=[e1, e2, ...] and "
                f"values=[v0, v1, v2, ...]; got {boundaries!r}, {values!r}."
            )
        self.boundaries = [
            _as_int_if_whole(_check_number(b, f"Piecewise boundary {b!r}"))
            for b in boundaries
        ]
        for earlier, later in zip(self.boundaries, self.boundaries[1:]):
            if later <= earlier:
                raise ValueError(
                    "Piecewise boundaries must be strictly increasing epochs, "
                    f"got {self.boundaries}."
                )
        if len(values) != len(self.boundaries) + 1:
            raise ValueError(
                f"Piecewise needs one more value than boundaries: "
                f"{len(self.boundaries)} boundaries {self.boundaries} need "
                f"{len(self.boundaries) + 1} values, got {len(values)}."
            )
        self.values = [
            check_weight(v, f"Piecewise value #{i}") for i, v in enumerate(values)
        ]

    def __call__(self, epoch, step=None):
        epoch = float(epoch)
        for boundary, value in zip(self.boundaries, self.values):
            if epoch < boundary:
                return value
        return self.values[-1]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


def get(schedule, what="schedule"):
    """A schedule from a number (-> `Constant`), a schedule, a callable, or a
    serialized schedule config."""
    if isinstance(schedule, bool):
        raise TypeError(f"{what} must be a schedule or a number, got {schedule!r}.")
    if is_real(schedule):
        return Constant(check_weight(schedule, what))
    if isinstance(schedule, dict):
        return keras.saving.deserialize_keras_object(schedule)
    if callable(schedule):
        return schedule
    raise TypeError(
        f"{what} must be a keras_kd.regimes.schedules schedule (Constant, LinearWarmup, "
        "Piecewise), a number, or a callable (epoch, step=None) -> float; got "
        f"{schedule!r}."
    )
