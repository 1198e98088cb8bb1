"""keras_kd.callbacks: FeatureImages writes FSP matrices and attention maps to
TensorBoard, TerminateOnNonFinite names the term; Keras's EarlyStopping on a
Distiller restores the best weights."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.callbacks import FeatureImages
from tests.helpers.distillers import X, Y, fit as _fit, kd_distiller as _distiller
from tests.helpers.models import tiny_cnn


def _image_tags(log_dir):
    tags = {}
    for path in glob.glob(os.path.join(log_dir, "images", "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_fsp_matrices_and_attention_maps_are_written(digits_batch, tmp_path):
    x, y = digits_batch
    fsp = losses.FSP(pairs=[("relu1", "relu2", "relu1", "relu2")])
    at = losses.AttentionTransfer(["relu2"], ["relu2"])
    distiller = keras_kd.Distiller(
        tiny_cnn(8, name="teacher"), tiny_cnn(8, name="student"), losses=[fsp, at]
    )
    callback = FeatureImages(str(tmp_path), x[:4], every_n_epochs=1, max_images=2)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(
        x, y, batch_size=16, epochs=2, verbose=0, callbacks=[callback]
    )
    tags = _image_tags(str(tmp_path))
    assert tags["fsp/fsp/pair0/teacher"] == {0, 1, 2}
    assert tags["fsp/fsp/pair0/student"] == {0, 1, 2}
    assert "attention/attention/pair0/student/1" in tags
    images = callback.images()
    assert images["fsp/fsp/pair0/teacher"].shape == (8, 16)  # C1 x C2
    assert images["attention/attention/pair0/teacher/0"].shape == (8, 8)
    # The image is the batch-mean of the FSP matrix the loss compares.
    t_view = distiller.teacher_view(x[:4])
    g = np.einsum("bhwi,bhwj->bij", t_view["relu1"].numpy(), t_view["relu2"].numpy()) / 64.0
    np.testing.assert_allclose(images["fsp/fsp/pair0/teacher"], g.mean(0), rtol=1e-4, atol=1e-6)


def test_needs_an_fsp_or_attention_term(digits_batch, tmp_path):
    x, y = digits_batch
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="no FSP or AttentionTransfer"):
        distiller.fit(x, y, epochs=1, verbose=0, callbacks=[FeatureImages(str(tmp_path), x[:2])])


def test_non_finite_term_stops_training_naming_it(digits_batch, tmp_path):
    from keras_kd.callbacks import TerminateOnNonFinite

    x, y = digits_batch
    teacher_logits = np.random.default_rng(0).normal(size=(len(x), 10)).astype("float32")
    teacher_logits[20] = np.nan  # a broken teacher output in batch 2 of 2
    bad = tf.data.Dataset.from_tensor_slices((x, y, {"logits": teacher_logits})).batch(16)
    distiller = keras_kd.Distiller(
        tiny_cnn(16, name="teacher"), tiny_cnn(8, name="student"),
        losses=[losses.KD()],
    )
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    checkpoint = str(tmp_path / "last_good.keras")
    distiller.fit(x, y, batch_size=16, epochs=1, verbose=0,
                  callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)])
    saved = os.path.getmtime(checkpoint)
    with pytest.raises(FloatingPointError, match=r"the term 'kd' became nan.*epoch 1, batch 2"):
        distiller.fit(bad, epochs=1, verbose=0,
                      callbacks=[TerminateOnNonFinite(), keras.callbacks.ModelCheckpoint(checkpoint)])
    assert os.path.getmtime(checkpoint) == saved  # the last good checkpoint is kept


def test_early_stopping_restores_the_best_weights():
    distiller = _distiller()
    history = _fit(distiller, X, Y, epochs=3, validation_data=(X, Y), callbacks=[
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, restore_best_weights=True)])
    assert distiller.evaluate(X, Y, verbose=0)[0] == pytest.approx(min(history["val_loss"]), rel=1e-5)
