"""Multi-stage training (FitNets, FSP) as a callback on one ordinary `fit`."""

import warnings

from keras_kd.checks.numbers import check_weight, is_integer
from keras_kd.regimes.schedules import STUDENT_LOSS, LossWeightScheduler


class Stage:
    """`epochs` epochs during which the named weights hold these values.

    Args:
        epochs: the stage's length (>= 1).
        weights: `{term name or "student_loss": weight}`; a term not named
            keeps the weight it has.
        name: shown in the logs (`stage` key) and error messages.
    """

    def __init__(self, epochs, weights, name=None):
        if not is_integer(epochs) or epochs < 1:
            raise ValueError(f"A stage lasts at least 1 epoch, got epochs={epochs!r}.")
        epochs = int(epochs)
        if not isinstance(weights, dict) or not weights:
            raise TypeError(
                "A stage needs weights={'term name' or 'student_loss': value, ...}, "
                f"got {weights!r}."
            )
        self.epochs = epochs
        self.weights = {
            str(key): check_weight(value, f"The weight of '{key}' in stage {name or ''}".rstrip())
            for key, value in weights.items()
        }
        self.name = name

    def __repr__(self):
        return f"Stage(epochs={self.epochs}, weights={self.weights}, name={self.name!r})"


class Stages(LossWeightScheduler):
    owns_default_schedules = False
    """Runs stages one after the other inside a single `Distiller.fit`.

    A `LossWeightScheduler` (the one mechanism that changes loss weights)
    with a piecewise-constant schedule per named weight: at the start of
    every epoch it assigns the current stage's weights to the terms' weight
    variables (and to `student_loss_weight`), which changes the objective
    without retracing the compiled step. A weight a stage does not name keeps
    the value it had in the stage before (or before training). After the last
    stage the weights keep their last values. The current stage's index is
    added to the epoch logs as `stage`, and the weights as `<name>_weight`,
    so both show in TensorBoard.

    FitNets (Romero et al. 2014): stage 1 trains the student up to the guided
    layer and the regressor on the hint alone; stage 2 trains the whole
    student with KD. With every other weight at 0 in stage 1, the layers after
    the guided layer get exactly zero gradients, so they do not move under
    SGD or Adam (whose moments stay zero); their BatchNormalization moving
    averages still track the batches, and weight regularizers, if any, still
    apply.

    ```python
    hint = keras_kd.losses.FitNet("stage2_relu", "stage2_relu", name="hint")
    kd = keras_kd.losses.KD(temperature=4)
    distiller = keras_kd.Distiller(teacher, student, losses=[hint, kd])
    stages = keras_kd.regimes.Stages([
        keras_kd.regimes.Stage(5, {"hint": 1.0, "kd": 0.0, "student_loss": 0.0}, "hints"),
        keras_kd.regimes.Stage(20, {"hint": 0.0, "kd": 1.0, "student_loss": 1.0}, "kd"),
    ])
    distiller.compile(...).fit(data, epochs=stages.total_epochs, callbacks=[stages])
    ```

    FSP (Yim et al. 2017) is the same with an `FSP` term in stage 1 and the
    task loss in stage 2.
    """

    def __init__(self, stages):
        stages = [s if isinstance(s, Stage) else Stage(**s) for s in stages]
        if not stages:
            raise ValueError("Stages needs at least one Stage.")
        self.stages = stages
        self.boundaries = []
        end = 0
        for stage in stages:
            end += stage.epochs
            self.boundaries.append(end)
        # Other terms' default schedules (DKD's warm-up) come from their own
        # scheduler, which Distiller.fit adds in front of this one.
        super().__init__({}, per_step=False, use_defaults=False)
        self._reassign = True

    @property
    def total_epochs(self):
        """The number of epochs all stages take together."""
        return self.boundaries[-1]

    def stage_index(self, epoch):
        """The 0-based stage of a 0-based epoch (the last one past the end)."""
        for index, end in enumerate(self.boundaries):
            if epoch < end:
                return index
        return len(self.stages) - 1

    def _stage_schedules(self, model):
        terms = {term.name: term for term in getattr(model, "distillation_losses", [])}
        if not hasattr(model, "student_loss_weight"):
            raise TypeError(
                f"Stages must be passed to keras_kd.Distiller.fit, got a {type(model).__name__}."
            )
        for stage in self.stages:
            unknown = [k for k in stage.weights if k != STUDENT_LOSS and k not in terms]
            if unknown:
                raise ValueError(
                    f"Stage {stage.name or self.stages.index(stage)} sets weights of "
                    f"{unknown}, but the distiller's terms are {sorted(terms)} "
                    f"(and '{STUDENT_LOSS}')."
                )
        keys = {k for stage in self.stages for k in stage.weights}
        schedules = {}
        for key in sorted(keys):
            current = (model.student_loss_weight if key == STUDENT_LOSS
                       else terms[key].weight)
            values = []
            for stage in self.stages:
                current = stage.weights.get(key, current)
                values.append(current)
            schedules[key] = self._piecewise(values)
        return schedules

    def _piecewise(self, values):
        def schedule(epoch, step=None):
            # Every epoch, not only at stage starts, so a run resumed
            # mid-stage (initial_epoch > 0, BackupAndRestore) gets its stage.
            return values[self.stage_index(int(epoch))]

        return schedule

    def on_train_begin(self, logs=None):
        self.schedules = self._stage_schedules(self.model)
        super().on_train_begin(logs)
        epochs = (self.params or {}).get("epochs")
        if epochs is not None and epochs < self.total_epochs:
            cut = [s.name or f"stage {i}" for i, s in enumerate(self.stages)
                   if self.boundaries[i] > epochs]
            warnings.warn(
                f"Stages take {self.total_epochs} epochs but fit runs {epochs}: {cut} will be "
                "cut short or skipped. Fit epochs=stages.total_epochs (for a recipe, "
                "Recipe.epochs).", stacklevel=2)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if logs is not None:
            logs["stage"] = float(self.stage_index(epoch))
