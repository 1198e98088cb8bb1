"""TensorFlow training steps: `tf.GradientTape`, loss scaling, `tf.distribute`.

The design card's `train_step` override: the objective itself comes from
`Distiller._student_objective` (backend-neutral), this module only takes the
gradient step and handles replicas.
"""

import tensorflow as tf

from keras_kd.batch import unpack_batch
from keras_kd.checks.batches import check_batch


def num_replicas():
    """Replicas in sync under the current `tf.distribute` strategy (1 without
    one); the same count Keras's losses divide by."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def sum_over_replicas(value):
    """`(value summed over the replicas, how many were summed)`: in a replica
    context of several replicas, the all-reduced sum; elsewhere `(value, 1)`."""
    replicas = num_replicas()
    if replicas > 1:
        context = tf.distribute.get_replica_context()
        if context is not None:
            return context.all_reduce(tf.distribute.ReduceOp.SUM, value), replicas
    return value, 1


class TensorFlowSteps:
    """`train_step(data)` / `test_step(data)` for Keras's TensorFlow trainer."""

    def train_step(self, data):
        x, y, sample_weight, cached = unpack_batch(data, self.student_view.output_names)
        x, y, sample_weight = check_batch(self, x, y, sample_weight, training=True)
        # The frozen teacher runs outside the tape: nothing of it is recorded.
        teacher_view = self._teacher_outputs(x, cached)
        trainable = self.trainable_weights
        with tf.GradientTape() as tape:
            total, parts, logits = self._student_objective(
                x, y, sample_weight, teacher_view, training=True
            )
            # Gradients are summed over replicas; scale so that N replicas
            # follow the same objective as one device on the global batch.
            replicas = num_replicas()
            scaled = total / float(replicas) if replicas > 1 else total
            scaled = self.optimizer.scale_loss(scaled)
        gradients = tape.gradient(scaled, trainable)
        self.optimizer.apply(gradients, trainable)
        return self._record(total, parts, x, y, logits, sample_weight)

    def test_step(self, data):
        x, y, sample_weight, cached = unpack_batch(data, self.student_view.output_names)
        x, y, sample_weight = check_batch(self, x, y, sample_weight, training=False)
        teacher_view = None
        if self._evaluate_distillation:
            teacher_view = self._teacher_outputs(x, cached)
        total, parts, logits = self._student_objective(
            x, y, sample_weight, teacher_view, training=False
        )
        return self._record(total, parts, x, y, logits, sample_weight)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 reduces the whole (x, y) tuple across replicas here,
        # which MultiWorkerMirroredStrategy refuses; only shapes are needed.
        # See keras_kd/distribute.py.
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            from keras_kd.distribute import local_batch

            for _, _, it in iterator:
                data_batch = local_batch(self.distribute_strategy, next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)


def part_gradient_norms(distiller, x, y, sample_weight, teacher_view, variables):
    """`{part: ‖∂part/∂variables‖₂}` for every unweighted part of the
    objective on one batch (training mode), leaving every variable as it was.

    Training mode moves BatchNormalization statistics and seed generators;
    their values are saved first and put back, so a calibration leaves no
    trace on the run it calibrates.
    """
    saved = [(v, tf.identity(v.value)) for v in distiller.non_trainable_variables]
    try:
        with tf.GradientTape(persistent=True) as tape:
            _, parts, _ = distiller._student_objective(
                x, y, sample_weight, teacher_view, training=True)
        norms = {}
        for name, value in parts.items():
            grads = [g for g in tape.gradient(value, variables) if g is not None]
            norms[name] = float(tf.linalg.global_norm(grads)) if grads else 0.0
        del tape
    finally:
        for variable, value in saved:
            variable.assign(value)
    return norms
