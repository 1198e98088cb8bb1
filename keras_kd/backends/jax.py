"""JAX training steps: the stateless `train_step(state, data)` of Keras's JAX
trainer, with `jax.value_and_grad` over the backend-neutral objective.

Variables are passed in and out as values (Keras's JAX state); the objective
runs inside a `keras.StatelessScope` that maps every variable to its value, so
the same `Distiller._student_objective` code serves both backends. BatchNorm
moving statistics and other non-trainable updates are read back from the
scope; regularization losses are collected by it.
"""

import jax
import keras

from keras_kd.batch import unpack_batch
from keras_kd.checks.batches import check_batch



def _values_after(scope, variables, before):
    """The values `variables` hold at the end of `scope` (assigned or not)."""
    after = []
    for variable, value in zip(variables, before):
        new = scope.get_current_value(variable)
        after.append(value if new is None else new)
    return after


class JaxSteps:
    """`train_step(state, data)` / `test_step(state, data)` for Keras's JAX trainer."""

    def _mapping(self, trainable, non_trainable):
        return list(zip(self.trainable_variables, trainable)) + list(
            zip(self.non_trainable_variables, non_trainable)
        )

    def _stateless_record(self, metrics_values, total, parts, x, y, logits, sample_weight):
        mapping = list(zip(self.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self._record(total, parts, x, y, logits, sample_weight)
        return logs, _values_after(scope, self.metrics_variables, metrics_values)

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y, sample_weight, cached = unpack_batch(data, self.student_view.output_names)
        x, y, sample_weight = check_batch(self, x, y, sample_weight, training=True)
        with keras.StatelessScope(state_mapping=self._mapping(trainable, non_trainable)) as scope:
            teacher_view = self._teacher_outputs(x, cached)
        # What the teacher's forward assigned (a counter, say; a frozen
        # teacher's BatchNormalization moves nothing) persists, as on TF.
        non_trainable = _values_after(scope, self.non_trainable_variables, non_trainable)
        teacher_view = jax.lax.stop_gradient(teacher_view)

        def objective(trainable_values, non_trainable_values):
            mapping = self._mapping(trainable_values, non_trainable_values)
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
                total, parts, logits = self._student_objective(
                    x, y, sample_weight, teacher_view, training=True
                )
            updated = _values_after(scope, self.non_trainable_variables, non_trainable_values)
            scaled = total
            if self.optimizer is not None:
                optimizer_mapping = list(zip(self.optimizer.variables, optimizer_values))
                with keras.StatelessScope(state_mapping=optimizer_mapping):
                    scaled = self.optimizer.scale_loss(total)
            return scaled, (total, parts, logits, updated)

        (_, aux), gradients = jax.value_and_grad(objective, has_aux=True)(
            trainable, non_trainable
        )
        total, parts, logits, non_trainable = aux
        trainable, optimizer_values = self.optimizer.stateless_apply(
            optimizer_values, gradients, trainable
        )
        logs, metrics_values = self._stateless_record(
            metrics_values, total, parts, x, y, logits, sample_weight
        )
        return logs, (trainable, non_trainable, optimizer_values, metrics_values)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        x, y, sample_weight, cached = unpack_batch(data, self.student_view.output_names)
        x, y, sample_weight = check_batch(self, x, y, sample_weight, training=False)
        mapping = self._mapping(trainable, non_trainable)
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            teacher_view = None
            if self._evaluate_distillation:
                teacher_view = self._teacher_outputs(x, cached)
            total, parts, logits = self._student_objective(
                x, y, sample_weight, teacher_view, training=False
            )
        non_trainable = _values_after(scope, self.non_trainable_variables, non_trainable)
        logs, metrics_values = self._stateless_record(
            metrics_values, total, parts, x, y, logits, sample_weight
        )
        return logs, (trainable, non_trainable, metrics_values)
