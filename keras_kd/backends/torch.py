"""PyTorch training steps: `train_step(data)` / `test_step(data)` for Keras's
torch trainer, with `loss.backward()` over the backend-neutral objective.

As in Keras's own `TorchTrainer.train_step`: the gradients of the previous
step are cleared (`self.zero_grad()`), the (optimizer-scaled) loss is
back-propagated, and `self.optimizer.apply(grads, trainable_weights)` runs
under `torch.no_grad()`. The frozen teacher runs under `torch.no_grad()`
first, so autograd records nothing of it; the metrics are updated from
detached values. Keras's torch trainer evaluates inside `torch.no_grad()`
already (its `make_test_function`).
"""

import torch

from keras_kd.batch import unpack_batch
from keras_kd.checks.batches import check_batch


def _detached(value):
    return value.detach() if isinstance(value, torch.Tensor) else value


class TorchSteps:
    """`train_step(data)` / `test_step(data)` for Keras's torch trainer."""

    def train_step(self, data):
        x, y, sample_weight, cached = unpack_batch(data, self.student_view.output_names)
        x, y, sample_weight = check_batch(self, x, y, sample_weight, training=True)
        # The frozen teacher runs outside autograd: nothing of it is recorded,
        # and no gradient can reach its weights.
        with torch.no_grad():
            teacher_view = self._teacher_outputs(x, cached)
        # Clear the gradients the previous step left on the weights.
        self.zero_grad()
        total, parts, logits = self._student_objective(
            x, y, sample_weight, teacher_view, training=True
        )
        trainable = self.trainable_weights[:]
        if trainable and total.requires_grad:
            scaled = self.optimizer.scale_loss(total) if self.optimizer is not None else total
            scaled.backward()
            gradients = [variable.value.grad for variable in trainable]
            with torch.no_grad():
                self.optimizer.apply(gradients, trainable)
        with torch.no_grad():
            return self._record(
                _detached(total), {name: _detached(v) for name, v in parts.items()},
                x, y, _detached(logits), sample_weight,
            )

    def test_step(self, data):
        x, y, sample_weight, cached = unpack_batch(data, self.student_view.output_names)
        x, y, sample_weight = check_batch(self, x, y, sample_weight, training=False)
        with torch.no_grad():
            teacher_view = None
            if self._evaluate_distillation:
                teacher_view = self._teacher_outputs(x, cached)
            total, parts, logits = self._student_objective(
                x, y, sample_weight, teacher_view, training=False
            )
            return self._record(total, parts, x, y, logits, sample_weight)
