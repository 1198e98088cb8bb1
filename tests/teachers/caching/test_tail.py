"""A top-k teacher cache with the other classes quantized (`tail_bits`): the
codec against a numpy derivation, replay of near-full logits every term
accepts, refusals. (On disk: test_store.py; run configs:
tests/tools/run/test_cache.py.)"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.teachers.caching import tail as logit_tail
from keras_kd.teachers.caching.teacher_cache import build
from tests.helpers.models import tiny_cnn


def _data(x, y, batch=8):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _numpy_quantized(logits, k, bits):
    """The documented quantization, derived independently in numpy (float64)."""
    out, steps = logits.astype(np.float64).copy(), []
    for row, original in zip(out, logits.astype(np.float64)):
        top = np.argsort(-original, kind="stable")[:k]
        tail = np.setdiff1d(np.arange(len(original)), top)  # ascending class order
        low, high = original[tail].min(), original[top].min()
        step = (high - low) / (2**bits - 1)
        codes = np.clip(np.round((original[tail] - low) / step), 0, 2**bits - 1) if step > 0 else 0
        row[tail] = low + codes * step
        steps.append(step)
    return out, np.array(steps)


@pytest.mark.parametrize("bits", range(1, 9))
def test_bit_packing_round_trips_and_matches_numpy_packbits(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2**bits, (3, 2, 37))
    packed = logit_tail.pack_bits(codes, bits).numpy()
    assert packed.dtype == np.uint8 and packed.shape == (3, 2, -(-37 * bits // 8))
    # numpy: each code's bits, least significant first, then 8 to a byte.
    planes = (codes[..., None] >> np.arange(bits)) & 1
    expected = np.packbits(planes.reshape(3, 2, -1), axis=-1, bitorder="little")
    np.testing.assert_array_equal(packed, expected)
    np.testing.assert_array_equal(logit_tail.unpack_bits(packed, 37, bits).numpy(), codes)


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_decoded_logits_match_the_numpy_derivation_top_k_exact(bits):
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(6, 100)) * 4).astype(np.float32)
    values, indices = tf.math.top_k(logits, 10)
    packed, low = logit_tail.encode_tail(logits, values, indices, bits)
    assert packed.shape == (6, -(-90 * bits // 8)) and packed.dtype == tf.uint8
    decoded = logit_tail.decode_logits(values, indices, packed, low, bits, 100).numpy()
    expected, steps = _numpy_quantized(logits, 10, bits)
    np.testing.assert_allclose(decoded, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.take_along_axis(decoded, indices.numpy(), 1), values.numpy())
    assert (np.abs(decoded - logits).max(axis=1) <= steps / 2 + 1e-5).all()


def test_a_flat_tail_decodes_exactly():
    logits = np.array([[5.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]], np.float32)
    values, indices = tf.math.top_k(logits, 1)
    packed, low = logit_tail.encode_tail(logits, values, indices, 2)
    decoded = logit_tail.decode_logits(values, indices, packed, low, 2, 4).numpy()
    np.testing.assert_array_equal(decoded, logits)


def test_a_non_finite_teacher_logit_is_refused_naming_the_sample(digits_batch, tmp_path):
    x, y = digits_batch
    image = keras.Input((8, 8, 1))
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(image))
    mask = np.zeros(10, np.float32)
    mask[9] = -np.inf  # a masked class
    masked = keras.Model(image, keras.layers.Lambda(lambda z: z + mask)(logits))
    path = str(tmp_path / "cache")
    with pytest.raises(ValueError, match=r"finite teacher logits.* 8 sample\(s\) of this batch, "
                                         r"the first at index 0"):
        build(masked, _data(x, y), path=path, top_k=3, tail_bits=3)
    assert not os.path.exists(path)


def test_cached_tail_replays_near_full_logits_that_every_term_trains_on(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    tail = build(teacher, _data(x, y), top_k=3, tail_bits=4, taps=["relu2"])
    assert tail.tail_bits == 4 and tail.top_k == 3
    batch = next(iter(tail.dataset(len(x))))[-1]
    assert set(batch) == {"logits", "relu2"}  # the compact keys are decoded away
    exact = teacher(x, training=False).numpy()
    expected, steps = _numpy_quantized(exact, 3, 4)
    np.testing.assert_allclose(batch["logits"].numpy(), expected, rtol=1e-4, atol=1e-4)
    for term in (losses.KD(temperature=4.0), losses.DKD(), losses.NKD(), losses.DIST()):
        keras.utils.set_random_seed(0)
        distiller = keras_kd.Distiller(teacher, tiny_cnn(8, name="student"), losses=[term])
        distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = distiller.fit(tail.dataset(16, shuffle=True), epochs=1, verbose=0).history
        assert np.isfinite(history[term.name][0]) and history[term.name][0] > 0


def test_tail_bits_store_fewer_bytes_than_full_logits(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    full, tail = build(teacher, _data(x, y)), build(teacher, _data(x, y), top_k=3, tail_bits=2)
    # 10 classes: 40 bytes of float32 logits against 3·4 + 3·1 + ceil(7·2/8) + 4 = 21.
    assert full.nbytes == len(x) * 40 and tail.nbytes == len(x) * 21


@pytest.mark.parametrize("bad", [0, 9, 2.5, True, "3"])
def test_bad_tail_bits_are_refused_before_the_teacher_runs(digits_batch, bad):
    x, y = digits_batch
    with pytest.raises(ValueError, match=r"tail_bits must be an integer in \[1, 8\]"):
        build(tiny_cnn(16), _data(x, y), top_k=3, tail_bits=bad)


def test_tail_bits_need_a_top_k_below_the_class_count(digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="tail_bits=3 .* needs top_k=k too"):
        build(tiny_cnn(16), _data(x, y), tail_bits=3)
    with pytest.raises(ValueError, match="top_k=10 keeps every class exactly: drop tail_bits"):
        build(tiny_cnn(16), _data(x, y), top_k=10, tail_bits=3)


def test_mixup_views_with_a_tail_get_their_class_count_from_the_cache(digits_batch):
    from keras_kd.teachers.caching.augment import Mixup

    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    # Integer labels are one-hot encoded with the class count the tail's key
    # records (a top-k cache without a tail needs Mixup(num_classes=C)).
    built = build(teacher, _data(x, y), augment=Mixup(0.4), views=2, top_k=3, tail_bits=4)
    xb, yb, out = next(iter(built.dataset(batch_size=8, shuffle=True, seed=1)))
    assert yb.shape == (8, 10) and out["logits"].shape == (8, 10)
    np.testing.assert_allclose(yb.numpy().sum(axis=1), 1.0, rtol=1e-6)
    exact = teacher(xb, training=False).numpy()
    np.testing.assert_allclose(out["logits"].numpy(), _numpy_quantized(exact, 3, 4)[0],
                               rtol=1e-4, atol=1e-4)
