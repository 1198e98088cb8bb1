"""Two-stage training (FitNets / FSP) as a callback on one fit."""

import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.regimes.stages import Stage, Stages
from tests.helpers.models import tiny_cnn


def test_fitnets_two_stages_train_up_to_the_guided_layer_first(digits_batch):
    x, y = digits_batch
    student = tiny_cnn(8, name="student")
    hint = losses.FitNet("relu1", "relu1", name="hint")
    distiller = keras_kd.Distiller(tiny_cnn(16, name="teacher"), student, losses=[hint, losses.KD()])
    stages = Stages([
        Stage(1, {"hint": 1.0, "kd": 0.0, "student_loss": 0.0}, "hints"),
        Stage(1, {"hint": 0.0, "kd": 1.0, "student_loss": 0.5}, "kd"),
    ])
    assert stages.total_epochs == 2
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    def snapshot():
        return {layer: [w.numpy().copy() for w in student.get_layer(layer).trainable_weights]
                for layer in ("conv1", "conv2", "logits")}

    before = snapshot()
    regressor_before = [w.numpy().copy() for w in hint.trainable_weights]
    history = distiller.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[stages]).history
    after_stage1 = snapshot()
    assert not np.array_equal(before["conv1"][0], after_stage1["conv1"][0])  # guided part trains
    for layer in ("conv2", "logits"):  # beyond the guided layer: untouched
        for b, a in zip(before[layer], after_stage1[layer]):
            np.testing.assert_array_equal(b, a)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(regressor_before, hint.trainable_weights))
    assert history["stage"] == [0.0]
    assert history["loss"][0] == pytest.approx(history["hint"][0], rel=1e-5)

    history = distiller.fit(x, y, batch_size=16, epochs=2, initial_epoch=1, verbose=0, callbacks=[stages]).history
    assert history["stage"] == [1.0]
    assert (hint.weight, distiller.student_loss_weight) == (0.0, 0.5)
    assert not np.array_equal(after_stage1["logits"][0], student.get_layer("logits").kernel.numpy())


def test_unknown_term_in_a_stage_lists_the_terms(digits_batch):
    x, y = digits_batch
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"\['hint'\].*\['kd'\]"):
        distiller.fit(x, y, epochs=1, verbose=0, callbacks=[Stages([Stage(1, {"hint": 1.0})])])


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_stage_length_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="at least 1 epoch"):
        Stage(bad, {"kd": 1.0})


def test_stage_weights_are_validated():
    with pytest.raises(ValueError, match="finite number >= 0"):
        Stage(1, {"kd": -1.0})
    with pytest.raises(TypeError):
        Stage(1, [("kd", 1.0)])


def test_a_fit_shorter_than_the_stages_warns(digits_batch):
    """Fitting fewer epochs than the stages take (e.g. the run's epochs
    instead of FSP's `Recipe.epochs`) cuts the last stage: said, not silent."""
    x, y = digits_batch
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    stages = Stages([Stage(1, {"kd": 1.0, "student_loss": 0.0}, "first"),
                     Stage(2, {"kd": 0.0, "student_loss": 1.0}, "labels")])
    with pytest.warns(UserWarning, match=r"Stages take 3 epochs but fit runs 2: \['labels'\]"):
        distiller.fit(x, y, epochs=2, verbose=0, callbacks=[stages])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        distiller.fit(x, y, epochs=3, verbose=0, callbacks=[stages])
