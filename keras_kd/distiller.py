"""`Distiller`: trains a student from a frozen teacher with pluggable terms.

The objective it trains (teacher outputs, one student pass, the terms, the
metrics) is `keras_kd.objective.DistillationObjective`, mixed in here; the
checks of its arguments are in `keras_kd.checks.models`.
"""

import keras

from keras_kd.taps import outputs as model_outputs
from keras_kd.backends import check_backend, steps_class
from keras_kd.checks.batches import with_label_checks
from keras_kd.checks.compile import check_metrics, check_student_loss
from keras_kd.checks.data import check_predict_data
from keras_kd.checks.guards import guard_evaluate, guard_fit
from keras_kd.checks.terms import check_terms
from keras_kd.checks.models import check_losses, check_models, is_graph_model
from keras_kd.checks.numbers import check_weight
from keras_kd.taps.views import (
    ModelView,
    output_is_softmax,
    with_batch_statistics,
)
from keras_kd.objective import DistillationObjective

_FROM_LOGITS_STRINGS = {
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
}


@keras.saving.register_keras_serializable(package="keras_kd")
class Distiller(steps_class(), DistillationObjective, keras.Model):
    """A `keras.Model` that trains `student` from a frozen `teacher`.

    Per batch the teacher runs once (`training=False`) and the student runs
    once (`training=True`); both return their logits and every feature the
    terms tap, from that single pass. The objective is

        total = student_loss_weight · L(y, student_logits)
                + Σ_i weight_i · term_i(teacher_view, student_view, y)
                + student.losses + the terms' own regularization losses

    `call` is the student, so `predict` and `evaluate` speak of the student;
    `evaluate` runs the teacher only when `compile(evaluate_distillation=True)`.

    Args:
        teacher: a trained `keras.Model` (frozen: `trainable` is set False).
        student: the `keras.Model` to train. It must output logits (no final
            softmax) when a term reads logits.
        losses: a `DistillationLoss` or a list of them (e.g.
            `[keras_kd.losses.KD(temperature=4)]`); a
            `keras.distillation.LogitsDistillation` / `FeatureDistillation`
            is converted as `keras_kd.losses.from_keras` does (it warns
            where Keras's value differs).
        student_loss_weight: weight of the hard-label loss given to `compile`
            (non-trainable variable; change it with
            `distiller.student_loss_weight = w`).
        name: the model's name.

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.KD(temperature=4)],
        student_loss_weight=0.1)
    distiller.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    ).fit(train_ds, epochs=10)
    distiller.export_student("saved_models/student")
    ```
    """

    def __init__(
        self,
        teacher,
        student,
        losses=(),
        student_loss_weight=1.0,
        name="distiller",
        **kwargs,
    ):
        check_backend()
        super().__init__(name=name, **kwargs)
        losses = check_losses(losses, student)
        check_models(teacher, student, losses)
        for term in losses:
            # Terms that derive taps or constants from the models (Overhaul
            # finds the BN feeding each ReLU) do so before the views exist.
            term.prepare(teacher, student)
        self.teacher = teacher
        self.student = student
        teacher.trainable = False
        self.distillation_losses = losses
        self._student_loss_weight = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(
                check_weight(student_loss_weight, "student_loss_weight")
            ),
            trainable=False,
            name="student_loss_weight",
            dtype="float32",
        )
        teacher_taps = [tap for term in losses for tap in term.teacher_taps]
        student_taps = [tap for term in losses for tap in term.student_taps]
        teacher_graph = teacher
        if any(term.teacher_batch_statistics for term in losses):
            teacher_graph = with_batch_statistics(teacher)
            # Tracked so that its (copied) weights are saved and reloaded with
            # the distiller; it is frozen like the teacher.
            self.teacher_with_batch_statistics = teacher_graph
        self.teacher_view = ModelView(teacher_graph, teacher_taps, role="teacher")
        self.student_view = ModelView(student, student_taps, role="student")
        for term in losses:
            self._build_term(term)
        self._student_loss_fn = None
        self._evaluate_distillation = False
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.term_trackers = [
            keras.metrics.Mean(name=term.metric_name) for term in losses
        ]
        check_terms(self, losses)  # one Distiller per term; no softmax over 1 logit
        self.built = True

    # ------------------------------------------------------------------
    # Each term built for the tapped shapes (the constructor's arguments
    # were checked first, in keras_kd/checks/models.py).
    def _build_term(self, term):
        teacher_shapes = {tap: self.teacher_view.shapes.get(tap) for tap in term.teacher_taps}
        student_shapes = {tap: self.student_view.shapes.get(tap) for tap in term.student_taps}
        if not term.built:
            term.build(teacher_shapes, student_shapes)

    # ------------------------------------------------------------------
    # Settings.
    @property
    def student_loss_weight(self):
        return float(self._student_loss_weight.numpy())

    @student_loss_weight.setter
    def student_loss_weight(self, value):
        self._student_loss_weight.assign(
            check_weight(value, "student_loss_weight")
        )

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, plus data checks and the terms' default schedules.

        Before the first step, the data is checked against the student
        (`keras_kd.checks.data`): input shape and dtype, label shape for the
        compiled loss, and for numpy arrays NaN/Inf inputs and labels out of
        range, each with an error that names the fix.

        When a term defines a `default_schedule` (DKD's warm-up) and no
        `keras_kd.regimes.schedules.LossWeightScheduler` is among `callbacks`, one is
        added first, so the schedule applies without extra code.
        """
        from keras_kd.regimes.schedules import with_default_schedules
        from keras_kd.checks.data import check_fit_data

        x = args[0] if args else kwargs.get("x")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        check_fit_data(self, x, y, kwargs.get("sample_weight"), kwargs.get("validation_data"))
        args, kwargs = _replace_x(args, kwargs, with_label_checks(self, x))  # XLA drops asserts
        callbacks = guard_fit(with_default_schedules(self, callbacks), kwargs)  # 0 steps raises
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict` of the student; refuses unbatched inputs."""
        check_predict_data(self.student, x)
        return super().predict(x, *args, **kwargs)

    def evaluate(self, *args, callbacks=None, **kwargs):
        """`keras.Model.evaluate`; raises when the data yields no batch."""
        x = args[0] if args else kwargs.get("x")
        args, kwargs = _replace_x(args, kwargs, with_label_checks(self, x))
        return super().evaluate(*args, callbacks=guard_evaluate(callbacks), **kwargs)

    def compile(
        self,
        optimizer="adam",
        loss=None,
        metrics=None,
        evaluate_distillation=False,
        **kwargs,
    ):
        """Configures training and returns the distiller itself.

        Args:
            optimizer: trains the student and the terms' adapters.
            loss: the student's hard-label loss (labels vs student logits).
                The strings "sparse_categorical_crossentropy",
                "categorical_crossentropy" and "binary_crossentropy" are read
                with `from_logits=True` because a distilled student outputs
                logits. `None` trains on the distillation terms alone.
            metrics: compiled metrics on the student's logits vs labels.
                Unlike plain Keras, they are weighted by `sample_weight` as
                the losses are, and skip unlabeled samples (label -1); the
                same holds for `weighted_metrics`.
            evaluate_distillation: when True, `evaluate` also runs the teacher
                and reports every term; by default it runs the student only.
            **kwargs: any other `keras.Model.compile` argument
                (`jit_compile`, `steps_per_execution`, `weighted_metrics`, ...).

        Returns:
            The distiller, so `distiller.compile(...).fit(...)` works.
        """
        self._student_loss_fn = self._resolve_student_loss(loss)
        metrics = check_metrics(self._student_loss_fn, metrics)  # see compile_checks.py
        self._evaluate_distillation = bool(evaluate_distillation)
        # Every compiled metric is weighted like the losses: by sample_weight
        # and by the labeled mask, so unlabeled (-1) samples of a
        # semi-supervised batch never count in `accuracy`.
        weighted_metrics = kwargs.pop("weighted_metrics", None)
        weighted = _as_list(metrics) + _as_list(weighted_metrics)
        super().compile(optimizer=optimizer, weighted_metrics=weighted or None, **kwargs)
        self._compile_config.config["metrics"] = metrics
        self._compile_config.config["weighted_metrics"] = weighted_metrics
        self._compile_config.config["loss"] = loss
        self._compile_config.config["evaluate_distillation"] = (
            self._evaluate_distillation
        )
        return self

    def compile_from_config(self, config):
        # Keras skips a custom compile() when loading; restore it ourselves so
        # a reloaded distiller trains and evaluates as the saved one did.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    def _resolve_student_loss(self, loss):
        if loss is None:
            return None
        if isinstance(loss, dict):  # one loss per output, keyed by name
            return model_outputs.OutputLosses(
                loss, self.student_view.output_names or [model_outputs.LOGITS],
                self._resolve_student_loss,
            )
        if isinstance(loss, str) and loss in _FROM_LOGITS_STRINGS:
            if not (is_graph_model(self.student) and output_is_softmax(self.student)):
                return _FROM_LOGITS_STRINGS[loss](from_logits=True)
        loss = keras.losses.get(loss)
        if loss is None:
            raise ValueError(f"Unknown loss {loss!r} for the student.")
        if not isinstance(loss, keras.losses.Loss):
            loss = keras.losses.LossFunctionWrapper(loss)
        check_student_loss(self.student, loss)  # from_logits=False on logits: refused
        return loss

    # ------------------------------------------------------------------
    # Export and serialization.
    def export_student(self, path, format=None, overwrite=False, **kwargs):
        """Writes the student alone (no teacher, no adapters) to `path`.

        `format` is inferred from the path when omitted: `.keras` writes a
        Keras archive, `.tflite` a TFLite flatbuffer, anything else a
        TensorFlow SavedModel directory with a `serving_default` signature.
        An existing path is never replaced unless `overwrite=True`, and then
        only when it holds an earlier export (recognised by its content; a
        folder or file of yours is never replaced), so a script that exports
        with `overwrite=True` can be re-run.
        """
        from keras_kd.export import export_model

        return export_model(
            self.student, path, format=format, overwrite=overwrite, **kwargs
        )

    def save(self, filepath, overwrite=False, **kwargs):
        """Saves the whole distiller (teacher, student, terms, adapters,
        optimizer) as a `.keras` archive; reload with
        `keras.saving.load_model(path)`, no `custom_objects` needed.

        Unlike `keras.Model.save`, an existing file is never replaced unless
        `overwrite=True` (a FileExistsError says so), and then only when it
        is a Keras archive (anything else is never replaced);
        `ModelCheckpoint` passes `overwrite=True` itself. The archive is written beside `filepath` and
        renamed over it once complete, so a failed save keeps the old file.
        """
        from keras_kd.atomic import refuse_existing, user_path, write_atomically
        from keras_kd.export import is_keras_archive

        filepath = user_path(filepath)
        if not filepath.endswith(".keras"):
            raise ValueError(
                f"Distiller.save writes a '.keras' archive, got '{filepath}' (Keras's legacy "
                ".h5 cannot hold a Distiller). Use a path ending in '.keras'; "
                "save_weights('x.weights.h5') saves the weights alone."
            )
        refuse_existing(filepath, overwrite, replaceable=is_keras_archive,
                        what="an earlier Keras archive")
        # Written beside, then renamed: a failed save keeps the old file.
        write_atomically(
            filepath, lambda target: super(Distiller, self).save(target, overwrite=True, **kwargs)
        )

    def get_config(self):
        return {
            "name": self.name,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "losses": [
                keras.saving.serialize_keras_object(term)
                for term in self.distillation_losses
            ],
            "student_loss_weight": self.student_loss_weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("teacher", "student"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        config["losses"] = [
            keras.saving.deserialize_keras_object(term)
            for term in config.get("losses", [])
        ]
        return cls(**config)


def _replace_x(args, kwargs, x):
    if args:
        return (x,) + tuple(args[1:]), kwargs
    if "x" in kwargs:
        kwargs = dict(kwargs, x=x)
    return args, kwargs


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
