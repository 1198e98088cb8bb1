"""Teacher outputs cached once and consumed without running the teacher."""

import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses, teachers
from keras_kd.teachers.caching.teacher_cache import build, cache
from tests.helpers.models import tiny_cnn


def _data(x, y, batch=8):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_cached_training_equals_live_training_and_skips_the_teacher(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher", counter=True)
    cached = cache(teacher, _data(x, y), taps=["relu2"])
    assert float(teacher.get_layer("counter").count.numpy()) == 4.0  # computed once
    batch = next(iter(cached))
    assert set(batch[2]) == {"logits", "relu2"}

    def train(data):
        student = tiny_cnn(8, name="student")
        student.set_weights(initial)
        distiller = keras_kd.Distiller(
            teacher, student, losses=[losses.KD(), losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")])
        distiller.distillation_losses[1].adapter.set_weights(adapter_init)
        distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = distiller.fit(data, epochs=2, verbose=0, shuffle=False).history
        return student, history

    template = tiny_cnn(8, name="student")
    initial = template.get_weights()
    adapter_init = [np.random.default_rng(0).normal(size=(1, 1, 16, 32)).astype("float32") * 0.1]
    counter = teacher.get_layer("counter").count
    counter.assign(0.0)
    cached_student, cached_history = train(cached)
    assert float(counter.numpy()) == 0.0  # the teacher never ran
    live_student, live_history = train(_data(x, y))
    assert float(counter.numpy()) == 8.0
    for a, b in zip(cached_student.get_weights(), live_student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cached_history["loss"], live_history["loss"], rtol=1e-5)


def test_shuffled_or_augmented_datasets_are_refused(digits_batch):
    x, y = digits_batch
    shuffled = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, reshuffle_each_iteration=True).batch(8)
    with pytest.raises(ValueError, match="different batches on two passes"):
        cache(tiny_cnn(16), shuffled)
    generator = tf.random.Generator.from_seed(1)  # stateful, like Keras's augmentation layers
    augmented = _data(x, y).map(lambda a, b: (a + generator.uniform(tf.shape(a)), b))
    with pytest.raises(ValueError, match="shuffled or randomly augmented"):
        cache(tiny_cnn(16), augmented)


def test_disk_cache_is_reused_and_checked_never_overwritten(digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, counter=True)
    path = str(tmp_path / "cache")
    cache(teacher, _data(x, y), path=path)
    teacher.get_layer("counter").count.assign(0.0)
    again = cache(teacher, _data(x, y), path=path)
    assert float(teacher.get_layer("counter").count.numpy()) == 0.0  # loaded from disk
    assert len(list(again)) == 4
    with pytest.raises(ValueError, match="different dataset"):
        cache(teacher, _data(x[:16], y[:16]), path=path)
    with pytest.raises(ValueError, match="lacks the taps"):
        cache(teacher, _data(x, y), taps=["relu1"], path=path)


def test_a_batch_that_changed_after_caching_fails_loudly(digits_batch):
    x, y = digits_batch
    scale = tf.Variable(1.0)
    source = _data(x, y).map(lambda a, b: (a * scale, b))
    teacher = tiny_cnn(16)
    snapshot = build(teacher, source)  # small data: the inputs are copied into memory
    streamed = build(teacher, source, in_memory=False)  # re-reads the source every epoch
    assert snapshot.inputs_in_memory and not streamed.inputs_in_memory
    scale.assign(2.0)  # the source now yields other images
    with pytest.raises(tf.errors.InvalidArgumentError, match="differs from the one cached"):
        list(streamed.dataset(batch_size=8))
    # The snapshot replays the images the teacher saw, never the changed ones.
    replayed = np.concatenate([xb.numpy() for xb, _, _ in snapshot.dataset(batch_size=8)])
    np.testing.assert_array_equal(replayed, x)


def test_cached_outputs_must_cover_the_terms_taps(digits_batch):
    x, y = digits_batch
    cached = cache(tiny_cnn(16), _data(x, y))
    distiller = keras_kd.Distiller(
        tiny_cnn(16), tiny_cnn(8), losses=[losses.FeatureMSE("relu1", "relu1", adapter="auto")])
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"taps \['relu1'\]"):
        distiller.fit(cached, epochs=1, verbose=0)


def test_dataset_of_inputs_only_and_length_mismatch(digits_batch):
    x, _ = digits_batch
    inputs_only = tf.data.Dataset.from_tensor_slices(x).batch(8)
    cached = cache(tiny_cnn(16), inputs_only)
    distiller = keras_kd.Distiller(tiny_cnn(16), tiny_cnn(8), losses=[losses.KD()])
    history = distiller.compile(optimizer="sgd").fit(cached, epochs=1, verbose=0).history
    assert np.isfinite(history["kd"][0])
    with pytest.raises(TypeError, match="batched tf.data.Dataset"):
        cache(tiny_cnn(16), x)


def test_teacher_cache_is_reexported():
    from keras_kd.teachers.caching import teacher_cache

    assert teachers.caching.cache is teacher_cache.cache
