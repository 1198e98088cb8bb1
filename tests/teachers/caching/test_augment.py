"""Batched stateless augmentations of the teacher cache (keras_kd.teachers.caching.augment)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_kd.teachers.caching import augment as augment_lib
from keras_kd.teachers.caching import replay as cache_replay
from keras_kd.teachers.caching.augment import CropFlip, check_batched, crop_flip, seeded_uniform, with_batched
from keras_kd.teachers.caching.teacher_cache import build


def _seeds(count, base=3):
    return np.stack([np.full(count, base), np.arange(count) * 7 + 1], axis=1).astype(np.int64)


@pytest.mark.parametrize("pad,shape", [(4, (9, 32, 32, 3)), (2, (5, 28, 28, 1)), (0, (3, 6, 7, 2)),
                                       (3, (4, 5, 9, 1))])
def test_batched_crop_flip_equals_the_per_sample_views_bit_for_bit(pad, shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    x[0, 0, 0, 0] = -0.0  # signed zeros and negatives must survive the crop unchanged
    seeds = _seeds(shape[0])
    aug = CropFlip(pad)
    one_by_one = np.stack([aug(x[i], seeds[i]).numpy() for i in range(shape[0])])
    together = aug.batched(x, seeds).numpy()
    assert together.shape == shape
    assert together.tobytes() == one_by_one.tobytes()


def test_crop_flip_matches_a_numpy_pad_crop_flip():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 8, 8, 2)).astype(np.float32)
    seeds = _seeds(6, base=11)
    draws = seeded_uniform(seeds, 3).numpy()
    got = crop_flip.batched(x, seeds).numpy()
    for i in range(6):
        top, left = (draws[i, :2] * 9).astype(int)  # pad 4: offsets in [0, 8]
        padded = np.pad(x[i], [(4, 4), (4, 4), (0, 0)])
        want = padded[top:top + 8, left:left + 8]
        if draws[i, 2] < 0.5:
            want = want[:, ::-1]
        np.testing.assert_array_equal(got[i], want)


def test_crop_flip_draws_every_offset_and_flips_half_the_time():
    draws = seeded_uniform(_seeds(20000), 3).numpy()
    offsets = (draws[:, :2] * 9).astype(int)
    assert set(np.unique(offsets)) == set(range(9))
    counts = np.bincount(offsets[:, 0], minlength=9)
    assert counts.min() > 0.85 * 20000 / 9 and counts.max() < 1.15 * 20000 / 9
    assert abs((draws[:, 2] < 0.5).mean() - 0.5) < 0.02


def test_seeded_uniform_is_a_pure_elementwise_function_of_each_seed():
    seeds = _seeds(50)
    together = seeded_uniform(seeds, 4).numpy()
    alone = np.stack([seeded_uniform(seeds[i], 4).numpy() for i in range(50)])
    np.testing.assert_array_equal(together, alone)
    assert together.min() >= 0.0 and together.max() < 1.0
    # Another seed, another stream; three-column keys (seed, epoch, sample) too.
    assert not np.array_equal(seeded_uniform(_seeds(50, base=4), 4).numpy(), together)
    keys = np.stack([np.full(50, 2), np.full(50, 9), np.arange(50)], axis=1)
    wide = seeded_uniform(keys, 1).numpy()
    assert wide.shape == (50, 1) and len(np.unique(wide)) == 50


@pytest.mark.parametrize("order", ["random", "cycle"])
def test_view_choice_of_a_batch_equals_the_choice_per_sample(order):
    index = tf.constant(np.arange(40) * 3, tf.int64)
    epoch = tf.constant(5, tf.int64)
    batch = cache_replay.view_choice(index, epoch, 4, 2, order).numpy()
    single = [int(cache_replay.view_choice(index[i], epoch, 4, 2, order)) for i in range(40)]
    assert batch.tolist() == single
    assert set(batch.tolist()) == {0, 1, 2, 3}


def test_a_batched_form_that_differs_from_the_per_sample_one_is_refused():
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 8, 8, 1)).astype(np.float32))

    def shifted(images, seeds):  # a plausible bug: every image one pixel off
        return tf.roll(crop_flip.batched(images, seeds), 1, axis=2)

    wrong = with_batched(lambda image, seed: crop_flip(image, seed), shifted)
    with pytest.raises(ValueError, match="does not give the per-sample views"):
        check_batched(wrong, x)
    cast = with_batched(lambda image, seed: crop_flip(image, seed),
                        lambda images, seeds: tf.cast(crop_flip.batched(images, seeds), tf.float64))
    with pytest.raises(ValueError, match="returns float64 but the per-sample form returns float32"):
        check_batched(cast, x)
    right = with_batched(lambda image, seed: crop_flip(image, seed) * 2.0,
                         lambda images, seeds: crop_flip.batched(images, seeds) * 2.0)
    check_batched(right, x)  # equal: accepted
    with pytest.raises(TypeError, match="batched must be a function"):
        with_batched(lambda image, seed: image, "not a function")


def test_cache_refuses_a_wrong_batched_form_before_the_teacher_pass(tmp_path):
    import keras

    calls = []

    class CountingTeacher(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            calls.append(1)
            return self.dense(keras.ops.reshape(x, (-1, 16)))

    x = np.random.default_rng(3).normal(size=(8, 4, 4, 1)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, np.int32))).batch(4)
    wrong = with_batched(lambda image, seed: crop_flip(image, seed),
                         lambda images, seeds: crop_flip.batched(images[::-1], seeds))
    teacher = CountingTeacher()
    with pytest.raises(ValueError, match="does not give the per-sample views"):
        build(teacher, data, path=tmp_path / "cache", augment=wrong, views=2)
    assert not calls and not (tmp_path / "cache").exists()


def test_a_cache_with_a_batched_augmentation_replays_with_one_map_per_batch(monkeypatch):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    teacher = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    x = np.random.default_rng(4).normal(size=(24, 8, 8, 1)).astype(np.float32)
    y = np.arange(24, dtype=np.int32) % 3
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    built = build(teacher, data, augment=crop_flip, views=3)
    per_batch = []
    real = crop_flip.batched

    def counted(images, seeds):
        per_batch.append(1)
        return real(images, seeds)

    monkeypatch.setattr(crop_flip, "batched", counted, raising=False)
    for epoch_batches in range(2):
        for images, labels, outputs in built.dataset(5, shuffle=True, seed=1):
            # Each replayed image is the cached view: the teacher gives the cached logits.
            np.testing.assert_allclose(teacher(images).numpy(), outputs["logits"].numpy(),
                                       rtol=1e-5, atol=1e-5)
    assert per_batch  # traced once per batch map, not once per sample
    assert augment_lib.batched_form(crop_flip) is counted
