"""Self-distillation: the student's own earlier self is the teacher.

- `snapshot(model)`: a frozen copy (same architecture, copied weights).
- `SelfDistillation(start_epoch=k)`: a callback; until epoch k only the
  student loss counts, at epoch k the teacher (a snapshot built with
  `self_distiller`) takes the student's current weights and stays frozen
  for the remaining epochs.
- `born_again(build_student, ...)`: born-again networks (Furlanello et al.
  2018): generation g+1, a fresh student of the same architecture, learns
  from generation g with KD.
"""

import keras

from keras_kd.distiller import Distiller
from keras_kd.losses import KD
from keras_kd.checks.numbers import is_integer


def snapshot(model, name=None):
    """A frozen clone of `model` with its current weights."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.trainable = False
    if name:
        copy.name = name
    return copy


def self_distiller(student, losses=None, student_loss_weight=1.0, **kwargs):
    """A Distiller whose teacher is a snapshot of `student` (for `SelfDistillation`)."""
    losses = [KD(temperature=4.0)] if losses is None else losses
    teacher = snapshot(student, name=f"{student.name}_snapshot")
    return Distiller(teacher, student, losses=losses, student_loss_weight=student_loss_weight, **kwargs)


class SelfDistillation(keras.callbacks.Callback):
    """From epoch `start_epoch` (0-based) the student learns from its snapshot.

    Before `start_epoch` every term's weight is 0, so only the student loss
    trains the student (no pre-trained teacher is needed). At the beginning
    of epoch `start_epoch` the teacher's weights are set to the student's
    current weights, the terms get their weights back, and the teacher stays
    frozen until the end. Weight changes go through the terms' weight
    variables, so the compiled step is not retraced.

    The distiller must have been built with `self_distiller(student, ...)`
    (or any Distiller whose teacher has the student's architecture). The
    snapshot is part of the distiller's weights, so a run resumed after
    `start_epoch` (e.g. with `BackupAndRestore`) keeps the restored snapshot.

    ```python
    distiller = keras_kd.regimes.self_distillation.self_distiller(student, [KD(temperature=4)])
    distiller.compile(...).fit(data, epochs=30,
        callbacks=[keras_kd.regimes.SelfDistillation(start_epoch=15)])
    ```
    """

    def __init__(self, start_epoch):
        super().__init__()
        if not is_integer(start_epoch) or start_epoch < 1:
            raise ValueError(
                f"start_epoch must be an int >= 1 (epochs of plain training before "
                f"the snapshot), got {start_epoch!r}."
            )
        self.start_epoch = start_epoch
        self._weights = None

    def on_train_begin(self, logs=None):
        model = self.model
        if not isinstance(model, Distiller):
            raise TypeError(f"SelfDistillation needs a keras_kd.Distiller, got {type(model).__name__}.")
        t_shapes = [tuple(w.shape) for w in model.teacher.weights]
        s_shapes = [tuple(w.shape) for w in model.student.weights]
        if t_shapes != s_shapes:
            raise ValueError(
                f"SelfDistillation copies the student's weights into the teacher, but the "
                f"teacher '{model.teacher.name}' and the student '{model.student.name}' have "
                "different architectures. Build the distiller with "
                "keras_kd.regimes.self_distillation.self_distiller(student, losses)."
            )
        self._weights = {term.name: term.weight for term in model.distillation_losses}

    def on_epoch_begin(self, epoch, logs=None):
        terms = self.model.distillation_losses
        if epoch < self.start_epoch:
            for term in terms:
                term.weight = 0.0
            return
        if epoch == self.start_epoch:
            self.model.teacher.set_weights(self.model.student.get_weights())
        for term in terms:
            term.weight = self._weights[term.name]

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["self_distilling"] = float(epoch >= self.start_epoch)


def born_again(
    build_student,
    data,
    generations=3,
    epochs=10,
    temperature=4.0,
    student_loss_weight=1.0,
    compile_kwargs=None,
    fit_kwargs=None,
):
    """Born-again networks: each generation distils the previous one.

    Args:
        build_student: a function returning a fresh, uncompiled student
            `keras.Model` (the same architecture every time).
        data: training data for `fit` (a `tf.data.Dataset` of `(x, y)` or an
            `(x, y)` tuple of arrays).
        generations: the number of models trained; generation 0 learns from
            the labels alone, generation g+1 from generation g with
            `KD(temperature)` plus the labels.
        epochs: epochs per generation.
        compile_kwargs: passed to `compile` (default: Adam, sparse CE on
            logits, accuracy).
        fit_kwargs: passed to `fit` (e.g. `verbose`, `callbacks`).

    Returns:
        The list of trained students, generation 0 first.
    """
    if generations < 1:
        raise ValueError(f"generations must be >= 1, got {generations}.")
    compile_kwargs = dict(compile_kwargs or {
        "optimizer": "adam",
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": ["accuracy"],
    })
    fit_kwargs = dict(fit_kwargs or {})
    x, y = (data if isinstance(data, tuple) else (data, None))
    models = []
    for generation in range(generations):
        student = build_student()
        if not isinstance(student, keras.Model):
            raise TypeError("build_student must return a keras.Model.")
        if generation == 0:
            trainer = student
        else:
            trainer = Distiller(
                snapshot(models[-1], name=f"generation{generation - 1}"), student,
                losses=[KD(temperature=temperature)], student_loss_weight=student_loss_weight,
            )
        # A new optimizer per generation: one instance cannot serve two models.
        optimizer = keras.optimizers.get(compile_kwargs.get("optimizer", "adam"))
        optimizer = optimizer.__class__.from_config(optimizer.get_config())
        trainer.compile(**{**compile_kwargs, "optimizer": optimizer})
        trainer.fit(x, y, epochs=epochs, **fit_kwargs)
        models.append(student)
    return models
