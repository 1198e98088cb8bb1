"""TensorFlow training steps: `tf.GradientTape`, loss scaling, `tf.distribute`.

The design card's `train_step` override: the objective itself comes from
`Distiller._student_objective` (backend-neutral), this module only takes the
gradient step and handles replicas.
"""

import tensorflow as tf

from keras_kd.batch import unpack_batch
from keras_kd.checks.batches import check_batch
from keras_kd.replicas import num_replicas



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
