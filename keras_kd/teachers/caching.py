"""A cache of teacher outputs, computed once and zipped into the pipeline.

With a frozen teacher and a deterministic pipeline, the teacher's logits
(and tapped features) are the same every epoch; computing them once turns
each later epoch into the cost of the student alone.
"""

import json
import os

import keras
import numpy as np

from keras_kd.taps import LOGITS, ModelView

_CHECK_BATCHES = 2


def _features(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def _checksum(x):
    import tensorflow as tf

    flat = tf.nest.flatten(x)
    return tf.add_n([tf.reduce_sum(tf.cast(t, tf.float64)) for t in flat])


def _first_checksums(dataset, count):
    return [float(_checksum(_features(b))) for b in dataset.take(count)]


def _refuse_unreproducible(dataset):
    first = _first_checksums(dataset, _CHECK_BATCHES)
    again = _first_checksums(dataset, _CHECK_BATCHES)
    if not first:
        raise ValueError("The dataset to cache is empty.")
    if not np.allclose(first, again, rtol=1e-9, atol=0.0):
        raise ValueError(
            "The dataset gives different batches on two passes (shuffled or "
            "randomly augmented before caching), so cached teacher outputs "
            "would not match the inputs. Cache a deterministic pipeline "
            "(no shuffle / random augmentation), then shuffle the cached "
            "pipeline's batches: cached.shuffle(number_of_batches)."
        )


def _compute(teacher, dataset, taps):
    import tensorflow as tf

    view = ModelView(teacher, taps, role="teacher")
    forward = tf.function(lambda x: view(x, training=False))
    outputs = {tap: [] for tap in view.taps}
    checksums, sizes = [], []
    cardinality = int(dataset.cardinality())
    bar = keras.utils.Progbar(cardinality if cardinality > 0 else None, unit_name="batch")
    for step, batch in enumerate(dataset):
        x = _features(batch)
        result = forward(x)
        for tap in view.taps:
            outputs[tap].append(keras.ops.convert_to_numpy(result[tap]))
        checksums.append(float(_checksum(x)))
        sizes.append(int(tf.nest.flatten(x)[0].shape[0]))
        bar.update(step + 1)
    if not sizes:
        raise ValueError("The dataset to cache is empty.")
    arrays = {tap: np.concatenate(parts) for tap, parts in outputs.items()}
    return arrays, np.array(checksums), np.array(sizes)


def _save(path, arrays, checksums, sizes):
    os.makedirs(path, exist_ok=False)
    np.savez(os.path.join(path, "outputs.npz"), **{f"tap{i}": a for i, a in enumerate(arrays.values())})
    np.save(os.path.join(path, "checksums.npy"), checksums)
    np.save(os.path.join(path, "sizes.npy"), sizes)
    with open(os.path.join(path, "taps.json"), "w") as handle:
        json.dump(list(arrays), handle)


def _load(path):
    with open(os.path.join(path, "taps.json")) as handle:
        taps = json.load(handle)
    stored = np.load(os.path.join(path, "outputs.npz"))
    arrays = {tap: stored[f"tap{i}"] for i, tap in enumerate(taps)}
    return arrays, np.load(os.path.join(path, "checksums.npy")), np.load(os.path.join(path, "sizes.npy"))


def cache(teacher, dataset, taps=(LOGITS,), path=None):
    """Computes the teacher's outputs once; returns `(x, y, teacher_outputs)` batches.

    Args:
        teacher: the teacher `keras.Model` (run with `training=False`).
        dataset: a batched, deterministic `tf.data.Dataset` of `(x, y)` or
            `(x, y, sample_weight)`. It is read twice up front to check that
            it gives the same batches (shuffling or random augmentation
            before caching is refused).
        taps: the teacher taps to store (`"logits"` always included); use
            the same names the distiller's terms ask for.
        path: a directory to store the cache on disk. When it exists, the
            cache is loaded from it and checked against the dataset (number
            and size of batches, a checksum per batch); it is never
            overwritten.

    Returns:
        A `tf.data.Dataset` yielding `(x, y, teacher_outputs)` (or
        `(x, y, sample_weight, teacher_outputs)`, or `(x, teacher_outputs)`
        for a dataset of inputs only), where `teacher_outputs`
        is a dict tap -> tensor. A `Distiller` fed this pipeline skips the
        teacher. Each batch's checksum is verified as it is read, so a
        dataset that changed since caching fails loudly instead of training
        on mismatched targets. To shuffle, shuffle this pipeline's batches.

    Example:

    ```python
    train = keras_kd.datasets.load("digits", "train", batch_size=64)
    cached = keras_kd.teachers.cache(teacher, train)
    distiller.fit(cached.shuffle(64).repeat(), epochs=30, steps_per_epoch=23)
    ```
    """
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"cache needs a batched tf.data.Dataset, got {type(dataset).__name__}; "
            "wrap arrays with tf.data.Dataset.from_tensor_slices((x, y)).batch(n)."
        )
    if isinstance(taps, str):
        taps = (taps,)
    _refuse_unreproducible(dataset)
    if path is not None and os.path.exists(path):
        arrays, checksums, sizes = _load(path)
        missing = [t for t in dict.fromkeys((LOGITS,) + tuple(taps)) if t not in arrays]
        if missing:
            raise ValueError(
                f"The cache at '{path}' lacks the taps {missing} (it has "
                f"{list(arrays)}). Use another path to compute a new cache."
            )
        current = _first_checksums(dataset, len(checksums) + 1)
        if len(current) != len(checksums) or not np.allclose(current, checksums, rtol=1e-9):
            raise ValueError(
                f"The cache at '{path}' was computed on a different dataset: "
                f"{len(checksums)} batches cached, {len(current)} now, or their "
                "contents / order differ. Use a new path (the old cache is "
                "left untouched)."
            )
    else:
        arrays, checksums, sizes = _compute(teacher, dataset, taps)
        if path is not None:
            _save(path, arrays, checksums, sizes)
    return _zip(dataset, arrays, checksums, sizes)


def _zip(dataset, arrays, checksums, sizes):
    import tensorflow as tf

    if len(set(sizes[:-1].tolist())) > 1:
        raise ValueError(
            f"cache needs batches of one size (the last may be smaller), got sizes {sorted(set(sizes.tolist()))}."
        )
    batch = int(sizes[0])
    known = int(dataset.cardinality())
    if known >= 0 and known != len(checksums):
        raise ValueError(
            f"The dataset has {known} batches but the cache holds {len(checksums)}; "
            "rebuild the cache for this dataset."
        )
    outputs = tf.data.Dataset.from_tensor_slices(arrays).batch(batch)
    expected = tf.data.Dataset.from_tensor_slices(checksums)
    count = len(checksums)

    def attach(batch_data, teacher_outputs, checksum):
        parts = tuple(batch_data) if isinstance(batch_data, (tuple, list)) else (batch_data,)
        tf.debugging.assert_near(
            _checksum(parts[0]), checksum, rtol=1e-6,
            message=(f"keras_kd teacher cache: a batch differs from the one cached "
                     f"({count} batches were cached). The dataset changed, was "
                     "shuffled or augmented after caching; rebuild the cache."),
        )
        return (*parts, teacher_outputs)

    zipped = tf.data.Dataset.zip((dataset, outputs, expected))
    return zipped.map(lambda b, t, c: attach(b, t, c)).prefetch(tf.data.AUTOTUNE)
