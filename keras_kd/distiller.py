"""`Distiller`: trains a student from a frozen teacher with pluggable terms."""

import keras
from keras import ops

from keras_kd import outputs as model_outputs
from keras_kd.backends import backend_module, check_backend, steps_class
from keras_kd.batch import batch_size
from keras_kd.compile_checks import check_metrics, check_student_loss
from keras_kd.guards import guard_evaluate, guard_fit
from keras_kd.labels import mask_unlabeled as _mask_unlabeled
from keras_kd.labels import term_labels
from keras_kd.losses.base import (
    DistillationLoss,
    check_weight,
    reduce_per_sample,
)
from keras_kd.taps import (
    ModelView,
    output_is_softmax,
    softmax_output_layer,
    with_batch_statistics,
)
from keras_kd.validation import (
    check_predict_data,
    check_terms,
    with_label_checks,
)
from keras_kd.losses.topk import check_cached_outputs

_FROM_LOGITS_STRINGS = {
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
}


@keras.saving.register_keras_serializable(package="keras_kd")
class Distiller(steps_class(), keras.Model):
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
            `[keras_kd.losses.KD(temperature=4)]`).
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
        losses = self._check_losses(losses)
        self._check_models(teacher, student, losses)
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
    # Validation, all before training starts.
    @staticmethod
    def _check_losses(losses):
        if isinstance(losses, DistillationLoss):
            losses = [losses]
        if losses is None:
            losses = []
        if isinstance(losses, (str, bytes)) or not isinstance(
            losses, (list, tuple)
        ):
            raise TypeError(
                "losses must be a DistillationLoss or a list of them, got "
                f"{losses!r}. Example: losses=[keras_kd.losses.KD("
                "temperature=4)]."
            )
        losses = list(losses)
        for i, term in enumerate(losses):
            if not isinstance(term, DistillationLoss):
                raise TypeError(
                    f"losses[{i}] is {term!r} ({type(term).__name__}), not a "
                    "keras_kd.losses.DistillationLoss. Pass a term object "
                    "such as keras_kd.losses.KD(temperature=4); a plain Keras "
                    "loss belongs in compile(loss=...), where it applies to "
                    "the labels."
                )
        names = [term.metric_name for term in losses]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(
                f"Two terms share the metric name(s) {duplicated}; give each "
                "a distinct name=..., e.g. FeatureMSE(..., name='hint2')."
            )
        return losses

    @staticmethod
    def _check_models(teacher, student, losses):
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"The {role} must be a keras.Model, got "
                    f"{type(model).__name__}. Load a saved model with "
                    "keras.saving.load_model(path) or build one with "
                    "keras.Model(inputs, outputs)."
                )
        if teacher is student:
            raise ValueError(
                "The teacher and the student are the same model object. For "
                "self-distillation, clone the student as the teacher: "
                "keras.models.clone_model(student) with its weights."
            )
        t_inputs = _input_shapes(teacher)
        s_inputs = _input_shapes(student)
        if t_inputs is not None and s_inputs is not None:
            if not _shapes_compatible(t_inputs, s_inputs):
                raise ValueError(
                    f"The teacher '{teacher.name}' takes inputs of shape "
                    f"{t_inputs} but the student '{student.name}' takes "
                    f"{s_inputs}; both see the same batch. Resize inside the "
                    "model (e.g. a keras.layers.Resizing layer first) so the "
                    "input shapes agree."
                )
        if not any(term.reads_logits for term in losses):
            return
        merged = getattr(teacher, "class_indices", None)
        # Each output a term reads: named, logits (no softmax, also inside a
        # nested model), the same classes on both sides.
        model_outputs.check_read_outputs(
            teacher, student,
            [t for t in losses if merged is None or not getattr(t, "checks_class_count", True)],
            softmax_output_layer,
        )
        readers = [
            t.name for t in losses
            if t.reads_logits and getattr(t, "checks_class_count", True)
        ]
        if readers and merged is not None:
            raise ValueError(
                f"The teacher '{teacher.name}' is a Merged teacher whose logits "
                "are several teachers' class subsets side by side, not the "
                f"student's classes; the terms {readers} would compare them "
                "column by column. Use keras_kd.teachers.MergedKD, which "
                "matches each teacher against its own student classes."
            )

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
        (`keras_kd.validation`): input shape and dtype, label shape for the
        compiled loss, and for numpy arrays NaN/Inf inputs and labels out of
        range, each with an error that names the fix.

        When a term defines a `default_schedule` (DKD's warm-up) and no
        `keras_kd.regimes.schedules.LossWeightScheduler` is among `callbacks`, one is
        added first, so the schedule applies without extra code.
        """
        from keras_kd.regimes.schedules import with_default_schedules
        from keras_kd.validation import check_fit_data

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
            if not (_is_graph_model(self.student) and output_is_softmax(self.student)):
                return _FROM_LOGITS_STRINGS[loss](from_logits=True)
        loss = keras.losses.get(loss)
        if loss is None:
            raise ValueError(f"Unknown loss {loss!r} for the student.")
        if not isinstance(loss, keras.losses.Loss):
            loss = keras.losses.LossFunctionWrapper(loss)
        check_student_loss(self.student, loss)  # from_logits=False on logits: refused
        return loss

    # ------------------------------------------------------------------
    # The objective, backend-neutral (keras.ops only).
    def student_loss(self, y, logits, sample_weight=None):
        """The hard-label loss, averaged over the labeled samples only.

        Integer labels < 0 (e.g. -1) mark unlabeled samples (semi-supervised
        batches): they get no student loss and no compiled metrics, but every
        distillation term still sees them. Dense labels (batch, H, W) beside
        logits (batch, H, W, classes): labels < 0 mark ignored pixels, and the
        loss averages over the labeled pixels (`keras_kd.labels`). With all samples labeled this is
        exactly the compiled loss.
        """
        y, weight, scale = _mask_unlabeled(y, sample_weight, logits)
        value = ops.cast(self._student_loss_fn(y, logits, sample_weight=weight), "float32")
        # Keras losses pre-divide by the number of replicas in a replica
        # context; undo it so every part is a per-replica mean and the one
        # division by replicas happens in train_step, for all parts alike.
        return value * scale * float(_num_replicas())

    def compute_distillation_loss(
        self,
        teacher_view,
        student_view,
        y=None,
        sample_weight=None,
        training=True,
        terms=None,
        student_loss_weight=None,
    ):
        """Returns `(total, parts)`: the scalar objective and its named parts.

        `parts` maps "student_loss" and each term's metric name to its
        unweighted value; `total` = Σ weight · part + regularization losses
        (the student's and the included terms'). `terms` defaults to every
        term; `student_loss_weight` to the distiller's weight variable.
        """
        terms = self.distillation_losses if terms is None else terms
        if student_loss_weight is None:
            student_loss_weight = self._student_loss_weight
        parts = {}
        total = ops.zeros((), "float32")
        logits = self.student_view.predictions(student_view)
        if y is not None and self._student_loss_fn is not None:
            student_loss = self.student_loss(y, logits, sample_weight)
            parts["student_loss"] = student_loss
            total = total + student_loss_weight * student_loss
        for term in terms:
            value = self._term_value(term, teacher_view, student_view, y, sample_weight, training)
            parts[term.metric_name] = value
            total = total + term.weight_variable * value
        regularization = list(self.student.losses)
        for term in terms:
            regularization.extend(term.losses)
        for extra in regularization:
            total = total + ops.cast(ops.sum(extra), "float32")
        return total, parts

    def _term_value(self, term, teacher_view, student_view, y, sample_weight, training):
        if term.requires_labels and y is None:
            raise ValueError(
                f"The term '{term.name}' ({type(term).__name__}) needs "
                "labels, but the batch has none (the dataset yields x "
                "only). Feed (x, y) batches or drop the term."
            )
        if term.requires_labels:
            # Label-reading terms (DKD, NKD) cover the labeled samples
            # only: unlabeled ones (label -1) carry no target class.
            labels, weight, scale = term_labels(
                y, sample_weight, self.student_view.predictions(student_view))
        else:
            labels, weight, scale = y, sample_weight, 1.0
        value = term(
            # A cache may hold derived forms of a tap ("logits@topk_values").
            {tap: v for tap, v in teacher_view.items()
             if tap.split("@")[0] in term.teacher_taps},
            {tap: student_view[tap] for tap in term.student_taps},
            labels=labels,
            training=training,
        )
        if len(value.shape) == 1:
            return reduce_per_sample(value, weight) * scale
        return reduce_per_sample(value)

    # ------------------------------------------------------------------
    # One step's work, shared by every backend's train_step/test_step
    # (keras_kd/backends/): the teacher's outputs, the student's single pass
    # with the objective, and the metrics.
    def _teacher_outputs(self, x, cached=None):
        """The teacher's taps for batch `x`: `{}` when no term reads the
        teacher, the cached outputs when the batch carries them, else one
        forward pass of the frozen teacher."""
        if not self.distillation_losses:
            return {}
        if cached is not None:
            return self._check_cached(cached)
        return self.teacher_view(x, training=False)

    def _student_objective(self, x, y, sample_weight, teacher_view, training):
        """One student pass and the objective: `(total, parts, logits)`.

        With `teacher_view=None` (evaluation without distillation) only the
        student's own loss counts, unweighted, so `val_loss` keeps meaning
        the hard-label loss whatever the schedules do to its weight.
        """
        student_view = self.student_view(x, training=training)
        if teacher_view is None:
            total, parts = self.compute_distillation_loss(
                {}, student_view, y, sample_weight, training=training,
                terms=(), student_loss_weight=1.0,
            )
        else:
            total, parts = self.compute_distillation_loss(
                teacher_view, student_view, y, sample_weight, training=training
            )
        return total, parts, self.student_view.predictions(student_view)

    def _check_cached(self, cached):
        return check_cached_outputs(cached, self.teacher_view.taps, self.distillation_losses)

    def _record(self, total, parts, x, y, logits, sample_weight):
        """Updates the loss trackers and compiled metrics; returns the logs."""
        count = batch_size(x)
        self._loss_tracker.update_state(total, sample_weight=count)
        if "student_loss" in parts:
            self.student_loss_tracker.update_state(
                parts["student_loss"], sample_weight=count
            )
        for term, tracker in zip(self.distillation_losses, self.term_trackers):
            if term.metric_name in parts:
                tracker.update_state(parts[term.metric_name], sample_weight=count)
        logs = {"loss": self._loss_tracker.result()}
        if y is not None and self._compile_metrics is not None:
            labels, weight, _ = _mask_unlabeled(y, sample_weight, logits)
            self._compile_metrics.update_state(labels, logits, weight)
            logs.update(self._compile_metrics.result())
        if "student_loss" in parts:
            logs["student_loss"] = self.student_loss_tracker.result()
        for term, tracker in zip(self.distillation_losses, self.term_trackers):
            if term.metric_name in parts:
                logs[term.metric_name] = tracker.result()
        # "total_loss" is Keras's "loss" (the same tracker), named for clarity.
        logs["total_loss"] = logs["loss"]
        return logs

    # ------------------------------------------------------------------
    # Export and serialization.
    def export_student(self, path, format=None, overwrite=False, **kwargs):
        """Writes the student alone (no teacher, no adapters) to `path`.

        `format` is inferred from the path when omitted: `.keras` writes a
        Keras archive, `.tflite` a TFLite flatbuffer, anything else a
        TensorFlow SavedModel directory with a `serving_default` signature.
        An existing path is never replaced unless `overwrite=True`.
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
        `overwrite=True` (a FileExistsError says so); `ModelCheckpoint` passes
        `overwrite=True` itself. The archive is written beside `filepath` and
        renamed over it once complete, so a failed save keeps the old file.
        """
        from keras_kd.atomic import refuse_existing, user_path, write_atomically

        filepath = user_path(filepath)
        if not filepath.endswith(".keras"):
            raise ValueError(
                f"Distiller.save writes a '.keras' archive, got '{filepath}' (Keras's legacy "
                ".h5 cannot hold a Distiller). Use a path ending in '.keras'; "
                "save_weights('x.weights.h5') saves the weights alone."
            )
        refuse_existing(filepath, overwrite)
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


def _num_replicas():
    # The same count Keras's losses divide by (keras.src.losses.loss).
    return backend_module().num_replicas()


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _is_graph_model(model):
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def _input_shapes(model):
    if not _is_graph_model(model):
        return None
    return [tuple(t.shape)[1:] for t in model.inputs]


def _shapes_compatible(a, b):
    if len(a) != len(b):
        return False
    for sa, sb in zip(a, b):
        if len(sa) != len(sb):
            return False
        if any(x is not None and y is not None and x != y for x, y in zip(sa, sb)):
            return False
    return True

