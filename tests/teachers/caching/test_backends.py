"""The teacher cache on the backend under test (TensorFlow, JAX, PyTorch): the
cached outputs are the teacher's on the replayed views, and training from
the cache equals training with the live teacher on those views."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.teachers.caching.teacher_cache import build, crop_flip
from tests.helpers.models import tiny_cnn

pytestmark = pytest.mark.every_backend  # the cache is built on tf.data on every backend


def _data(x, y, batch=8):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _fit(teacher, data, terms):
    keras.utils.set_random_seed(0)
    distiller = keras_kd.Distiller(teacher, tiny_cnn(8, name="student"), losses=terms)
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = distiller.fit(data, epochs=1, verbose=0).history
    return distiller.student.get_weights(), history


def test_cached_views_hold_the_teachers_outputs_and_train_like_the_live_teacher(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    built = build(teacher, _data(x, y), taps=["relu2"], augment=crop_flip, views=2, seed=1)
    for images, _, outputs in built.dataset(16, shuffle=True, seed=2):
        expected = keras.ops.convert_to_numpy(teacher(images.numpy(), training=False))
        np.testing.assert_allclose(outputs["logits"].numpy(), expected, rtol=1e-5, atol=1e-6)
    terms = lambda: [losses.KD(temperature=4.0), losses.DKD(),  # noqa: E731
                     losses.FeatureMSE("relu2", "relu2", adapter="auto")]
    cached_weights, cached = _fit(teacher, built.dataset(16, shuffle=True, seed=2), terms())
    views = built.dataset(16, shuffle=True, seed=2).map(lambda images, labels, _: (images, labels))
    live_weights, live = _fit(teacher, views, terms())
    for key in ("kd", "dkd", "feature_mse", "loss"):
        np.testing.assert_allclose(cached[key], live[key], rtol=1e-5, err_msg=key)
    for a, b in zip(cached_weights, live_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_top_k_and_tail_caches_train_on_this_backend(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    exact = keras.ops.convert_to_numpy(teacher(x, training=False))
    top = build(teacher, _data(x, y), top_k=3, temperatures=[4.0])
    tail = build(teacher, _data(x, y), top_k=3, tail_bits=8)
    replayed = next(iter(tail.dataset(len(x))))[-1]["logits"].numpy()
    np.testing.assert_allclose(replayed, exact, atol=(exact.max() - exact.min()) / 255)
    _, history = _fit(teacher, top.dataset(16), [losses.TopKKD(temperature=4.0, k=3)])
    assert history["kd"][0] > 0
    _, history = _fit(teacher, tail.dataset(16), [losses.DKD()])
    assert history["dkd"][0] > 0
