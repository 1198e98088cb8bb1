"""A whole Distiller (teacher, student, terms, adapters, compile state) saved
as .keras reloads without custom_objects and keeps training; .keras is the
only format Distiller.save and ModelCheckpoint write."""

import os

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from tests.helpers.distillers import X, Y, fit as _fit, kd_distiller as _distiller
from tests.helpers.models import tiny_cnn


def test_distiller_round_trips_through_keras_archive(digits_batch, tmp_path):
    x, y = digits_batch
    distiller = keras_kd.Distiller(
        tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student"),
        losses=[losses.KD(temperature=3.0, weight=0.5),
                losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")],
        student_loss_weight=0.25,
    )
    distiller.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
        evaluate_distillation=True,
    ).fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    restored = keras.saving.load_model(path)

    assert isinstance(restored, keras_kd.Distiller)
    assert restored.student_loss_weight == 0.25
    kd, hint = restored.distillation_losses
    assert (kd.temperature, kd.weight) == (3.0, 0.5)
    np.testing.assert_array_equal(
        hint.adapter.kernel.numpy(), distiller.distillation_losses[1].adapter.kernel.numpy()
    )
    np.testing.assert_allclose(restored.predict(x, verbose=0), distiller.predict(x, verbose=0), atol=1e-6)
    before = distiller.evaluate(x, y, verbose=0, return_dict=True)
    after = restored.evaluate(x, y, verbose=0, return_dict=True)
    assert set(after) == set(before)
    for key in before:
        assert after[key] == np.float32(before[key]) or abs(after[key] - before[key]) < 1e-5, key
    history = restored.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])


def test_a_user_layer_as_adapter_survives_save_and_load(digits_batch, tmp_path):
    x, y = digits_batch
    adapter = keras.layers.Conv2D(32, 3, padding="same", name="my_adapter")
    distiller = keras_kd.Distiller(
        tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student"),
        losses=[losses.FeatureMSE("relu2", "relu2", adapter=adapter)],
    )
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(x, y, batch_size=16, verbose=0)
    path = str(tmp_path / "d.keras")
    distiller.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        restored.distillation_losses[0].adapter.kernel.numpy(), adapter.kernel.numpy()
    )


def test_reloaded_distiller_continues_training_to_identical_weights(digits_batch, tmp_path):
    import tensorflow as tf

    from keras_kd.regimes.schedules import LinearWarmup, LossWeightScheduler

    x, y = digits_batch
    distiller = keras_kd.Distiller(
        tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student"),
        losses=[losses.KD(temperature=3.0),
                losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")],
        student_loss_weight=0.5,
    )
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # fixed order
    schedule = {"kd": LinearWarmup(1.0, warmup_epochs=3)}
    distiller.fit(data, epochs=1, verbose=0, callbacks=[LossWeightScheduler(schedule)])
    path = str(tmp_path / "mid.keras")
    distiller.save(path)
    restored = keras.saving.load_model(path)
    assert int(restored.optimizer.iterations.numpy()) == 4
    for model in (distiller, restored):
        model.fit(data, epochs=3, initial_epoch=1, verbose=0,
                  callbacks=[LossWeightScheduler(schedule)])
    for a, b in zip(distiller.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert restored.distillation_losses[0].weight == distiller.distillation_losses[0].weight == 1.0


@pytest.mark.parametrize("name", ["distiller.h5", "distiller"])
def test_distiller_save_needs_a_keras_archive(tmp_path, name):
    with pytest.raises(ValueError, match="writes a '.keras' archive"):
        _distiller().save(str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_model_checkpoint_callbacks(tmp_path):
    distiller = _distiller()
    best = tmp_path / "best.keras"
    _fit(distiller, X, Y, epochs=2, validation_data=(X, Y),
         callbacks=[keras.callbacks.ModelCheckpoint(str(best), save_best_only=True)])
    assert isinstance(keras.saving.load_model(str(best)), keras_kd.Distiller)
    weights = tmp_path / "ck.weights.h5"
    _fit(distiller, X, Y, callbacks=[
        keras.callbacks.ModelCheckpoint(str(weights), save_weights_only=True)])
    assert weights.stat().st_size > 0
    with pytest.raises(ValueError, match="writes a '.keras' archive"):
        _fit(distiller, X, Y, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "c.h5"))])
