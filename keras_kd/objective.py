"""The distillation objective, written once for training and evaluation.

`DistillationObjective` is the part of `keras_kd.Distiller` that every
backend's `train_step`/`test_step` (`keras_kd/backends/`) calls into: the
teacher's outputs for a batch (`_teacher_outputs`), the student's single pass
with the objective (`_student_objective`, through
`compute_distillation_loss`), and the loss trackers and compiled metrics
(`_record`). It is backend-neutral (keras.ops only).

It is a mixin of `Distiller` (a `keras.Model`) and reads the distiller's
state: `distillation_losses`, `teacher_view`, `student_view`, `student`,
`_student_loss_fn`, `_student_loss_weight`, `student_loss_tracker`,
`term_trackers`, and Keras's `_loss_tracker` and `_compile_metrics`.
"""

from keras import ops

from keras_kd.replicas import num_replicas
from keras_kd.batch import batch_size
from keras_kd.labels import mask_unlabeled as _mask_unlabeled
from keras_kd.labels import term_labels
from keras_kd.losses.base import reduce_per_sample
from keras_kd.losses.topk_kd import check_cached_outputs


class DistillationObjective:
    """The objective of a `Distiller`: `total = student_loss_weight ·
    L(y, student_logits) + Σ_i weight_i · term_i + regularization losses`."""

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
        return value * scale * float(num_replicas())

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
        # "loss" is the total (Keras's key: EarlyStopping, ModelCheckpoint and
        # ReduceLROnPlateau watch it); no second name for the same number.
        return logs
