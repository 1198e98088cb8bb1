"""Self-distillation from a snapshot, and born-again generations."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.callbacks import SelfDistillation
from keras_kd.regimes.self_distillation import born_again, self_distiller, snapshot
from tests.helpers.models import tiny_cnn


def test_snapshot_is_a_frozen_copy():
    model = tiny_cnn(8)
    copy = snapshot(model)
    assert copy is not model and not copy.trainable
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)


class _WeightsAtEpochEnds(keras.callbacks.Callback):
    """Copies of the student's and the teacher's weights at every epoch end."""

    def __init__(self):
        super().__init__()
        self.student, self.teacher = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.student.append([w.copy() for w in self.model.student.get_weights()])
        self.teacher.append([w.copy() for w in self.model.teacher.get_weights()])


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _differ(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))


def test_student_loss_only_before_the_snapshot_then_a_frozen_teacher(digits_batch):
    x, y = digits_batch
    student = tiny_cnn(8, name="student")
    initial = [w.copy() for w in student.get_weights()]
    distiller = self_distiller(student, [losses.KD(temperature=2.0, weight=0.7)], student_loss_weight=1.0)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    weights = _WeightsAtEpochEnds()
    history = distiller.fit(x, y, batch_size=16, epochs=4, verbose=0,
                            callbacks=[SelfDistillation(start_epoch=2), weights]).history
    # Epochs 0 and 1: only the student loss counts.
    for epoch in (0, 1):
        assert history["loss"][epoch] == pytest.approx(history["student_loss"][epoch], rel=1e-5)
    assert history["self_distilling"] == [0.0, 0.0, 1.0, 1.0]
    assert distiller.distillation_losses[0].weight == pytest.approx(0.7)
    assert history["loss"][2] > history["student_loss"][2]
    # Before the refresh the teacher is the copy made at construction.
    _assert_same_weights(weights.teacher[0], initial)
    _assert_same_weights(weights.teacher[1], initial)
    # At the refresh (start of epoch 2) the teacher took the student's weights
    # of that moment, i.e. those at the end of epoch 1 ...
    assert _differ(weights.student[1], initial)  # (so a stale copy would fail)
    _assert_same_weights(weights.teacher[2], weights.student[1])
    # ... and kept them, frozen, while the student moved on.
    _assert_same_weights(weights.teacher[3], weights.student[1])
    _assert_same_weights(distiller.teacher.get_weights(), weights.student[1])
    assert _differ(weights.student[3], weights.student[1])
    assert _differ(student.get_weights(), distiller.teacher.get_weights())


def test_self_distillation_needs_the_same_architecture(digits_batch):
    x, y = digits_batch
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="self_distiller"):
        distiller.fit(x, y, epochs=1, verbose=0, callbacks=[SelfDistillation(start_epoch=1)])
    with pytest.raises(ValueError, match="start_epoch"):
        SelfDistillation(start_epoch=0)


def _numpy_kd(teacher_logits, student_logits, temperature):
    """T² · mean KL(softmax(t/T) || softmax(s/T)), in float64."""
    def log_softmax(z):
        z = keras.ops.convert_to_numpy(z).astype(np.float64) / temperature
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    log_p, log_q = log_softmax(teacher_logits), log_softmax(student_logits)
    return temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum(-1).mean()


class _Trainers(keras.callbacks.Callback):
    """What each generation trains: the model given to fit and its first
    batch's logs."""

    def __init__(self):
        super().__init__()
        self.models, self.first_logs = [], []

    def on_train_begin(self, logs=None):
        self.models.append(self.model)

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.first_logs.append(dict(logs))


def _seeded_student():
    keras.utils.set_random_seed(3)  # every generation starts from the same weights
    return tiny_cnn(8, name="student")


def test_born_again_generations_learn_from_the_previous_one(digits_batch):
    x, y = digits_batch
    trainers = _Trainers()
    models = born_again(_seeded_student, (x, y), generations=2, epochs=1, temperature=3.0,
                        fit_kwargs={"verbose": 0, "batch_size": 16, "shuffle": False,
                                    "callbacks": [trainers]})
    assert len(models) == 2 and models[0] is not models[1]
    # Generation 0 learns from the labels alone.
    assert trainers.models[0] is models[0]
    # Generation 1 is distilled from a frozen snapshot of generation 0.
    trainer = trainers.models[1]
    assert isinstance(trainer, keras_kd.Distiller) and trainer.student is models[1]
    assert not trainer.teacher.trainable
    _assert_same_weights(trainer.teacher.get_weights(), models[0].get_weights())
    (kd,) = trainer.distillation_losses
    # Its KD value on the first batch is KD(generation 0 → the fresh student).
    fresh = _seeded_student()
    initial = [w.copy() for w in fresh.get_weights()]
    expected = _numpy_kd(models[0](x[:16], training=False), fresh(x[:16], training=True), 3.0)
    assert trainers.first_logs[1][kd.metric_name] == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-3
    # Same initial weights, same batches: the generations differ only through KD.
    _assert_same_weights(_seeded_student().get_weights(), initial)
    assert _differ(models[0].get_weights(), models[1].get_weights())
