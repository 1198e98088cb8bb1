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

"""

import math

import keras

from keras_kd.checks.numbers import check_weight, is_real
from keras_kd.losses.base import DistillationLoss


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

STUDENT_LOSS = "student_loss"


class _Target:
    """One weight the scheduler drives: a term's or the student loss's."""

    def __init__(self, label, schedule, variable_owner):
        self.label = label
        self.schedule = schedule
        self.owner = variable_owner  # a DistillationLoss, or the distiller
        self.last = None

    def assign(self, value):
        if isinstance(self.owner, DistillationLoss):
            self.owner.weight_variable.assign(value)
        else:
            self.owner.student_loss_weight = value
        self.last = value

    def current(self):
        if isinstance(self.owner, DistillationLoss):
            return self.owner.weight
        return self.owner.student_loss_weight


class LossWeightScheduler(keras.callbacks.Callback):
    """Assigns scheduled loss weights at each epoch (or step), no retracing.

    Args:
        schedules: dict mapping a target to a schedule. A target is a term
            object, a term's name (its metric name), or `"student_loss"` for
            the Distiller's `student_loss_weight`. A schedule is a
            `Schedule`, a number (a constant) or a callable
            `(epoch, step=None) -> float`.
        per_step: False (default): evaluate at `on_epoch_begin` with the
            epoch index. True: evaluate at `on_train_batch_begin` with the
            fractional epoch `epoch + batch / steps_per_epoch` (the integer
            epoch when the number of steps is unknown) and the global step.
        use_defaults: also apply the default schedule of every term that
            defines one and is not in `schedules` (e.g. DKD's linear
            warm-up). `LossWeightScheduler()` applies just those.

    Targets are resolved against the distiller when training begins; an
    unknown name raises a ValueError listing the term names. The weights in
    use are added to the epoch logs as `"<name>_weight"` (and
    `"student_loss_weight"`), so `History` and `TensorBoard` record them; put
    this callback before `TensorBoard` in the callbacks list, since Keras
    hands the epoch logs to the callbacks in order. A schedule keeps the last
    weight it assigned after `fit` returns.

    Example:

    ```python
    scheduler = keras_kd.regimes.schedules.LossWeightScheduler({
        "kd": keras_kd.regimes.schedules.LinearWarmup(1.0, warmup_epochs=5),
        "student_loss": 0.5,
    })
    distiller.fit(train_ds, epochs=20,
                  callbacks=[scheduler, keras.callbacks.TensorBoard("logs")])
    ```
    """

    # Whether this scheduler decides about the terms' default schedules
    # (applies them or, with use_defaults=False, leaves them off), so that
    # Distiller.fit adds no scheduler of its own. Stages does not.
    owns_default_schedules = True

    def __init__(self, schedules=None, per_step=False, use_defaults=True):
        super().__init__()
        if schedules is None:
            schedules = {}
        if not isinstance(schedules, dict):
            raise TypeError(
                "LossWeightScheduler takes a dict {term, term name or "
                "'student_loss': schedule}, got "
                f"{type(schedules).__name__}: {schedules!r}."
            )
        self.schedules = {}
        for key, schedule in schedules.items():
            if not isinstance(key, (str, DistillationLoss)):
                raise TypeError(
                    "LossWeightScheduler keys must be terms, term names or "
                    f"'student_loss', got {key!r} ({type(key).__name__})."
                )
            label = key if isinstance(key, str) else key.name
            self.schedules[key] = get(schedule, f"The schedule of '{label}'")
        self.per_step = bool(per_step)
        # Per epoch, its batch hook does nothing, so Keras may dispatch the
        # batch hooks off the training thread (no per-step sync); per step it
        # logs the weight assigned at batch begin, which must not race.
        self.async_safe = not self.per_step
        self.use_defaults = bool(use_defaults)
        # Assign every time, not only on change (for subclasses whose weights
        # another scheduler may also move, e.g. Stages).
        self._reassign = False
        self._targets = []
        self._epoch = 0

    # -- resolution ----------------------------------------------------
    def _resolve(self, model):
        terms = getattr(model, "distillation_losses", None)
        if terms is None:
            raise TypeError(
                "LossWeightScheduler schedules the loss weights of a "
                f"keras_kd.Distiller; it was given {type(model).__name__} "
                f"'{getattr(model, 'name', model)}'."
            )
        by_name = {}
        for term in terms:
            by_name.setdefault(term.metric_name, term)
            by_name.setdefault(term.name, term)
        targets, owners = [], {}
        for key, schedule in self.schedules.items():
            if isinstance(key, DistillationLoss):
                if not any(key is term for term in terms):
                    raise ValueError(
                        f"The term '{key.name}' given to LossWeightScheduler is "
                        f"not one of the distiller's terms {[t.name for t in terms]}."
                    )
                owner, label = key, key.metric_name
            elif key == STUDENT_LOSS:
                owner, label = model, STUDENT_LOSS
            elif key in by_name:
                owner = by_name[key]
                label = owner.metric_name
            else:
                raise ValueError(
                    f"LossWeightScheduler: no term named '{key}' in the "
                    f"distiller '{model.name}'. Its terms are "
                    f"{[t.metric_name for t in terms]}; use '{STUDENT_LOSS}' for "
                    "the hard-label loss weight."
                )
            if id(owner) in owners:
                raise ValueError(
                    f"LossWeightScheduler got two schedules for '{label}' "
                    f"(keys {owners[id(owner)]!r} and {key!r})."
                )
            owners[id(owner)] = key
            targets.append(_Target(label, schedule, owner))
        if self.use_defaults:
            for term in terms:
                default = getattr(term, "default_schedule", None)
                if default is not None and id(term) not in owners:
                    targets.append(_Target(term.metric_name, default, term))
        return targets

    # -- callback hooks ------------------------------------------------
    def on_train_begin(self, logs=None):
        self._targets = self._resolve(self.model)

    def _apply(self, epoch, step):
        for target in self._targets:
            raw = target.schedule(epoch, step)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise TypeError(
                    f"The schedule of '{target.label}' returned {raw!r} at "
                    f"epoch {epoch}; it must return a number."
                ) from None
            value = check_weight(
                value, f"The schedule of '{target.label}' at epoch {epoch}"
            )
            if value != target.last or self._reassign:
                target.assign(value)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if not self.per_step:
            self._apply(epoch, None)

    def on_train_batch_begin(self, batch, logs=None):
        if not self.per_step:
            return
        steps = (self.params or {}).get("steps")
        if steps:
            epoch = self._epoch + batch / steps
            step = self._epoch * steps + batch
        else:
            epoch = self._epoch
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        # On JAX, fit carries the variables' values in its own state during an
        # epoch; write that state back first, so the next step reads the
        # weights assigned here (Keras's documented way for callbacks).
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        self._apply(epoch, step)

    def _log(self, logs):
        if logs is None:
            return
        for target in self._targets:
            # The value assigned last: on JAX the variables themselves may be
            # detached from the model's state in the middle of an epoch.
            value = target.last if target.last is not None else target.current()
            logs[f"{target.label}_weight"] = value

    def on_train_batch_end(self, batch, logs=None):
        if self.per_step:
            self._log(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._log(logs)


def with_default_schedules(model, callbacks):
    """`callbacks` with a `LossWeightScheduler()` first when a term of
    `model` has a default schedule and no scheduler is present.

    The hook for `Distiller.fit`, so that DKD's warm-up applies without the
    user adding the callback. The scheduler goes first, so a later callback
    that also assigns weights (e.g. `keras_kd.regimes.Stages`) wins for the terms it
    names, and TensorBoard sees the `*_weight` logs. Returns `callbacks`
    unchanged otherwise (also for a `keras.callbacks.CallbackList`).
    """
    terms = getattr(model, "distillation_losses", ())
    if not any(getattr(t, "default_schedule", None) is not None for t in terms):
        return callbacks
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    callbacks = list(callbacks or [])
    if any(isinstance(cb, LossWeightScheduler) and cb.owns_default_schedules for cb in callbacks):
        return callbacks
    return [LossWeightScheduler()] + callbacks
