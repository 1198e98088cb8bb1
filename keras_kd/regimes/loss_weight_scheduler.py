"""`LossWeightScheduler`: the one callback that changes loss weights during `fit`.

It evaluates each target's schedule (`keras_kd.regimes.weight_schedules`) per
epoch or per step and assigns the term's (or the student loss's) weight
variable, so the compiled step reads the new value without retracing.
`with_default_schedules` is `Distiller.fit`'s hook that adds one for terms
with a default schedule (DKD's warm-up). Two-stage training
(`keras_kd.regimes.stages.Stages`) is built on it.
"""

import keras

from keras_kd.losses.base import DistillationLoss, check_weight
from keras_kd.regimes.weight_schedules import get

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
    that also assigns weights (e.g. `keras_kd.Stages`) wins for the terms it
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
