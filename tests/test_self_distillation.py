"""Self-distillation from a snapshot, and born-again generations."""

import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.callbacks import SelfDistillation
from keras_kd.regimes.self_distillation import born_again, self_distiller, snapshot
from tests.models import tiny_cnn


def test_snapshot_is_a_frozen_copy():
    model = tiny_cnn(8)
    copy = snapshot(model)
    assert copy is not model and not copy.trainable
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_student_loss_only_before_the_snapshot_then_a_frozen_teacher(digits_batch):
    x, y = digits_batch
    student = tiny_cnn(8, name="student")
    distiller = self_distiller(student, [losses.KD(temperature=2.0, weight=0.7)], student_loss_weight=1.0)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = distiller.fit(x, y, batch_size=16, epochs=3, verbose=0,
                            callbacks=[SelfDistillation(start_epoch=2)]).history
    # Epochs 0 and 1: only the student loss counts.
    for epoch in (0, 1):
        assert history["total_loss"][epoch] == pytest.approx(history["student_loss"][epoch], rel=1e-5)
    assert history["self_distilling"] == [0.0, 0.0, 1.0]
    assert distiller.distillation_losses[0].weight == pytest.approx(0.7)
    assert history["total_loss"][2] > history["student_loss"][2]
    # The teacher holds the epoch-2 snapshot while the student moved on.
    teacher_kernel = distiller.teacher.get_layer("conv1").kernel.numpy()
    assert not np.array_equal(teacher_kernel, student.get_layer("conv1").kernel.numpy())


def test_self_distillation_needs_the_same_architecture(digits_batch):
    x, y = digits_batch
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="self_distiller"):
        distiller.fit(x, y, epochs=1, verbose=0, callbacks=[SelfDistillation(start_epoch=1)])
    with pytest.raises(ValueError, match="start_epoch"):
        SelfDistillation(start_epoch=0)


def test_born_again_generations_learn_from_the_previous_one(digits_batch):
    x, y = digits_batch
    models = born_again(lambda: tiny_cnn(8, name="student"), (x, y), generations=2, epochs=1,
                        fit_kwargs={"verbose": 0, "batch_size": 16})
    assert len(models) == 2
    assert models[0] is not models[1]
    assert not np.array_equal(models[0].get_layer("conv1").kernel.numpy(),
                              models[1].get_layer("conv1").kernel.numpy())
