"""The per-sample teacher cache: shuffling, re-batching, subsets, fingerprints,
augmented views replayed bit for bit, and top-k outputs in a Distiller."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.losses.topk_kd import TopKKD
from keras_kd.teachers.caching import views as cache_views
from keras_kd.teachers.caching.teacher_cache import build, cache, crop_flip
from tests.helpers.models import tiny_cnn


def _data(x, y, batch=8):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _teacher_logits(teacher, x):
    return teacher(x, training=False).numpy()


def _index_of(x_batch, x_all):
    """Row of x_all equal to each row of x_batch (the samples are distinct)."""
    flat = x_all.reshape(len(x_all), -1)
    return [int(np.flatnonzero((flat == row.reshape(1, -1)).all(axis=1))[0]) for row in x_batch]


def test_per_sample_shuffle_rebatch_and_subset_keep_each_samples_outputs(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    expected = _teacher_logits(teacher, x)
    built = build(teacher, _data(x, y))
    orders = []
    data = built.dataset(batch_size=5, shuffle=True, seed=1)
    for _ in range(2):  # two epochs of one pipeline: per-sample reshuffle
        seen = []
        for xb, yb, out in data:
            assert xb.shape[0] in (5, 2)  # 32 = 6 × 5 + 2: re-batched
            rows = _index_of(xb.numpy(), x)
            np.testing.assert_allclose(out["logits"].numpy(), expected[rows], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(yb.numpy(), y[rows])
            seen += rows
        assert sorted(seen) == list(range(32))
        orders.append(seen)
    assert orders[0] != orders[1] and orders[0] != list(range(32))
    # Samples from different input batches share an output batch: per sample, not per batch.
    assert any(len({i // 8 for i in orders[0][j:j + 5]}) > 1 for j in range(0, 30, 5))
    subset = [3, 4, 17, 30]
    rows = []
    for xb, _, out in built.dataset(batch_size=3, indices=subset):
        r = _index_of(xb.numpy(), x)
        np.testing.assert_allclose(out["logits"].numpy(), expected[r], rtol=1e-5, atol=1e-6)
        rows += r
    assert rows == subset
    assert int(built.dataset(batch_size=3, indices=subset).cardinality()) == 2


@pytest.mark.parametrize("change", ["flipped", "permuted_in_batch", "one_sample_changed"])
def test_a_changed_dataset_is_caught_in_the_pipeline(digits_batch, change):
    x, y = digits_batch
    altered = x.copy()
    if change == "flipped":
        altered = altered[:, :, ::-1]
    elif change == "permuted_in_batch":
        altered[8:16] = altered[8:16][::-1]  # same batch, same count, same pixel sum
    else:
        altered[20, 3, 3] += 0.25
    built = build(tiny_cnn(16), _data(x, y), in_memory=False)  # re-reads its source
    built._source = _data(altered, y)  # the pipeline yields other samples after caching
    with pytest.raises(tf.errors.InvalidArgumentError, match="differs from the one cached"):
        list(built.dataset(batch_size=8))


def test_replayed_views_are_the_cached_views_bit_for_bit(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher", counter=True)
    built = build(teacher, _data(x, y), augment=crop_flip, views=3, seed=5)
    assert float(teacher.get_layer("counter").count.numpy()) == 4.0  # 3 views, one pass per batch
    candidates = np.stack([[crop_flip(x[i], [5, i * 3 + v]).numpy() for v in range(3)]
                           for i in range(32)])
    assert not np.array_equal(candidates[:, 0], candidates[:, 1])  # the views differ
    used = set()
    data = built.dataset(batch_size=8, shuffle=True, seed=2)
    for _ in range(4):  # epochs: each replays one of the K views per sample
        for xb, yb, out in data:
            xb = xb.numpy()
            for j in range(len(xb)):
                hits = [(i, v) for i in range(32) for v in range(3)
                        if np.array_equal(candidates[i, v], xb[j])]
                assert hits, "a replayed image is none of the cached views"
                i, v = hits[0]
                used.add((i, v))
                assert y[i] == yb[j]
            # The teacher's logits on the replayed pixels are the cached ones.
            np.testing.assert_allclose(_teacher_logits(teacher, xb), out["logits"].numpy(),
                                       rtol=1e-5, atol=1e-6)
    assert len(used) > 32 * 1.5  # several views per sample over 4 epochs


@pytest.mark.parametrize("kind", ["global", "generator", "keras_layer"])
def test_an_augmentation_that_is_not_stateless_is_refused(digits_batch, kind):
    x, y = digits_batch
    if kind == "global":
        augment = lambda img, seed: tf.image.random_flip_left_right(img)  # noqa: E731
    elif kind == "generator":
        generator = tf.random.Generator.from_seed(1)
        augment = lambda img, seed: img + generator.uniform(tf.shape(img))  # noqa: E731
    else:
        flip = keras.layers.RandomFlip("horizontal", seed=1)
        augment = lambda img, seed: flip(img, training=True)  # noqa: E731
    with pytest.raises(ValueError, match="not a stateless function of its seed"):
        build(tiny_cnn(16), _data(x, y), augment=augment, views=2)
    with pytest.raises(ValueError, match="needs an augment"):
        build(tiny_cnn(16), _data(x, y), views=2)


def test_topk_cache_trains_like_live_topk_kd_and_full_logit_terms_refuse_it(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    cached = cache(teacher, _data(x, y), top_k=3, temperatures=[4.0], taps=["relu2"])
    batch = next(iter(cached))[2]
    assert set(batch) == {"relu2", "logits@topk_values", "logits@topk_indices", "logits@rest_lse@T=4.0"}
    assert batch["logits@topk_indices"].dtype == tf.uint8  # 10 classes

    def train(data):
        keras.utils.set_random_seed(0)
        distiller = keras_kd.Distiller(teacher, tiny_cnn(8, name="student"),
                                       losses=[TopKKD(temperature=4.0, k=3)])
        distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        history = distiller.fit(data, epochs=2, verbose=0).history
        return distiller.student.get_weights(), history

    cached_weights, cached_history = train(cached)
    live_weights, live_history = train(_data(x, y))
    np.testing.assert_allclose(cached_history["kd"], live_history["kd"], rtol=1e-5)
    assert cached_history["kd"][0] > 0
    for a, b in zip(cached_weights, live_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for term in (losses.KD(), losses.DKD()):
        distiller = keras_kd.Distiller(teacher, tiny_cnn(8), losses=[term])
        distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        with pytest.raises(ValueError, match=rf"term '{term.name}' \({type(term).__name__}\) "
                                             "needs the teacher's full logits"):
            distiller.fit(cached, epochs=1, verbose=0)
    # Feature taps are stored in full beside the top-k logits.
    distiller = keras_kd.Distiller(teacher, tiny_cnn(8), losses=[
        TopKKD(temperature=4.0), losses.FeatureMSE("relu2", "relu2", adapter="auto")])
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert np.isfinite(distiller.fit(cached, epochs=1, verbose=0).history["feature_mse"][0])


def test_infinite_and_unbatched_datasets_are_refused_up_front(digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match="infinite"):
        cache(tiny_cnn(16), _data(x, y).repeat())
    with pytest.raises(ValueError, match="add .batch"):
        cache(tiny_cnn(16), tf.data.Dataset.from_tensor_slices((x.reshape(32, -1)[:, 0], y)))


def test_cycle_view_order_replays_every_view_once_per_k_epochs(digits_batch):
    x, y = digits_batch
    built = build(tiny_cnn(16), _data(x, y), augment=crop_flip, views=3, seed=5)
    hashes = {}
    for i in range(32):
        for v in range(3):
            hashes[int(cache_views.fingerprint_sample(crop_flip(x[i], [5, i * 3 + v])))] = (i, v)
    data = built.dataset(batch_size=8, shuffle=True, seed=2, view_order="cycle")
    seen = []
    for _ in range(3):
        epoch = [hashes[int(h)] for xb, _, _ in data
                 for h in cache_views.fingerprint_batch(xb).numpy()]
        assert sorted(i for i, _ in epoch) == list(range(32))
        seen.append(dict(epoch))
    for i in range(32):  # views (e + offset) mod 3: each view exactly once in 3 epochs
        assert sorted(s[i] for s in seen) == [0, 1, 2]
    assert len({seen[0][i] for i in range(32)}) == 3  # offsets differ between samples
    with pytest.raises(ValueError, match="view_order must be one of"):
        built.dataset(batch_size=8, view_order="epoch")


def test_memory_and_source_pipelines_replay_the_same_samples_and_outputs(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    kwargs = dict(augment=crop_flip, views=2, seed=3)
    memory = build(teacher, _data(x, y), **kwargs)
    source = build(teacher, _data(x, y), in_memory=False, **kwargs)
    assert memory.inputs_in_memory and not source.inputs_in_memory
    for built in (memory, source):
        for xb, yb, out in built.dataset(batch_size=6, indices=[1, 5, 9, 30], seed=4):
            np.testing.assert_allclose(_teacher_logits(teacher, xb.numpy()),
                                       out["logits"].numpy(), rtol=1e-5, atol=1e-6)
            assert yb.numpy().tolist() == y[[1, 5, 9, 30]].tolist()


def test_a_plain_baseline_sees_the_cached_runs_sample_order(digits_batch):
    from keras_kd.teachers.caching.replay import shuffled_arrays

    x, y = digits_batch
    built = build(tiny_cnn(16), _data(x, y))
    cached, plain = built.dataset(batch_size=8, shuffle=True, seed=9), shuffled_arrays((x, y), 8, seed=9)
    for _ in range(2):  # two epochs: reshuffled alike
        a = np.concatenate([yb.numpy() for _, yb, _ in cached])
        b = np.concatenate([yb.numpy() for _, yb in plain])
        xa = np.concatenate([xb.numpy() for xb, _, _ in cached])
        xp = np.concatenate([xb.numpy() for xb, _ in plain])
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(xa, xp)


def test_mixup_views_replay_the_mixed_image_and_label_the_teacher_saw(digits_batch):
    from keras_kd.teachers.caching.augment import Mixup

    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    mixup = Mixup(0.4, base=crop_flip)
    built = build(teacher, _data(x, y), augment=mixup, views=2, seed=5)
    # One view by hand, in numpy: λ·crop_flip(x_i) + (1 − λ)·crop_flip(x_j).
    seed = tf.constant([5, 7 * 2 + 1], tf.int64)  # sample 7, view 1
    j, lam = int(mixup.partner(seed, 32)), float(mixup.weight(seed))
    assert 0.0 <= lam <= 1.0
    left = crop_flip(x[7], mixup._seed(seed, 4)).numpy()
    right = crop_flip(x[j], mixup._seed(seed, 5)).numpy()
    np.testing.assert_allclose(mixup(x[7], seed, x[j]).numpy(), lam * left + (1 - lam) * right,
                               rtol=1e-6, atol=1e-7)
    expected_y = np.zeros(10, np.float32)
    expected_y[y[7]] += lam
    expected_y[y[j]] += 1 - lam
    np.testing.assert_allclose(mixup.labels(y[7], y[j], seed, 10).numpy(), expected_y, rtol=1e-6)
    labels_seen = []
    for xb, yb, out in built.dataset(batch_size=8, shuffle=True, seed=1):
        np.testing.assert_allclose(_teacher_logits(teacher, xb.numpy()), out["logits"].numpy(),
                                   rtol=1e-5, atol=1e-6)
        assert yb.shape == (len(xb), 10)
        np.testing.assert_allclose(yb.numpy().sum(axis=1), 1.0, rtol=1e-6)
        labels_seen.append(yb.numpy())
    assert (np.count_nonzero(np.concatenate(labels_seen), axis=1) <= 2).all()
    distiller = keras_kd.Distiller(teacher, tiny_cnn(8), losses=[losses.KD(temperature=4.0)])
    distiller.compile(optimizer="adam",
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    history = distiller.fit(built.dataset(batch_size=8, shuffle=True), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="needs the inputs in memory"):
        build(teacher, _data(x, y), augment=mixup, views=2, in_memory=False)
    with pytest.raises(ValueError, match="alpha must be a number > 0"):
        Mixup(0.0)
    with pytest.raises(ValueError, match="not x alone"):  # before the teacher pass
        build(teacher, tf.data.Dataset.from_tensor_slices(x).batch(8), augment=mixup, views=2)
    with pytest.raises(ValueError, match="several inputs"):
        build(teacher, tf.data.Dataset.from_tensor_slices(({"image": x}, y)).batch(8),
              augment=mixup, views=2)
