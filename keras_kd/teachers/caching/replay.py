"""Replaying a teacher cache: the training pipelines of `TeacherCache.dataset`.

Two pipelines give the same batches (each sample's replayed view, its
label, the teacher's outputs on that view):

- `from_memory`: the inputs were copied into memory when the cache was
  built (small data, the default under 2 GiB). Each pass shuffles sample
  *indices* (one vectorized stateless shuffle) and gathers inputs, labels
  and outputs per batch; the augmentation runs once per batch when it has a
  batched form (`augment.batched`, e.g. `crop_flip`), else once per sample.
  A cached epoch costs about what the student alone costs with the same
  augmentation.
- `from_source`: the inputs stay in the user's dataset (large data); it is
  read every pass and zipped with the cached records.

Both check every batch against the fingerprints of the views the teacher
saw, and number their passes (`pass_numbers`) so the view replayed on pass
`e` is a function of `(seed, e, sample)`: `view_order="cycle"` replays view
`(e + offset) mod K` (each sample walks through its K views, from its own
random offset), `"random"` a seeded uniform draw.
"""

import numpy as np
import tensorflow as tf

from keras_kd.teachers.caching import augment as augment_lib
from keras_kd.teachers.caching import views as views_lib
from keras_kd.teachers.caching.tail import decode_outputs, find_tail_key

VIEW_ORDERS = ("random", "cycle")
OUT = "out:"  # record keys holding teacher outputs
_MISMATCH = ("keras_kd teacher cache: a sample differs from the one cached (the dataset "
             "changed, was reordered or augmented differently after caching); rebuild the cache")


def check_view_order(view_order):
    if view_order not in VIEW_ORDERS:
        raise ValueError(f"view_order must be one of {VIEW_ORDERS}, got {view_order!r}: "
                         "'cycle' replays view (epoch + offset) mod K, 'random' a seeded draw.")
    return view_order


def pass_numbers():
    """A one-element dataset giving 0, 1, 2, ... on successive passes (epochs).

    Keras iterates a `tf.data` pipeline once per epoch; the counter makes
    the pass number part of the graph, so shuffles and view choices are
    stateless functions of `(seed, pass)` and can be replayed.
    """
    counter = tf.Variable(-1, dtype=tf.int64, trainable=False, name="cache_pass")
    return tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
        lambda _: counter.assign_add(1))


def _seed(seed, epoch, salt):
    return tf.stack([tf.cast(seed, tf.int64) * 1000003 + salt, tf.cast(epoch, tf.int64)])


def view_choice(index, epoch, views, seed, view_order):
    """The view (in [0, views)) replayed for sample `index` on pass `epoch`.

    Elementwise in `index` (a scalar or a batch of sample indices): the draws
    come from `augment.seeded_uniform`, so a batch gets the views its samples
    get one by one.
    """
    index = tf.cast(index, tf.int64)
    if views == 1:
        return tf.zeros_like(index)
    like = lambda value: tf.fill(tf.shape(index), tf.cast(value, tf.int64))  # noqa: E731
    if view_order == "cycle":
        keys = tf.stack([like(tf.cast(seed, tf.int64) * 1000003 + 2), index], axis=-1)
        offset = tf.cast(augment_lib.seeded_uniform(keys, 1)[..., 0] * views, tf.int64)
        return (tf.minimum(offset, views - 1) + tf.cast(epoch, tf.int64)) % views
    keys = tf.stack([like(tf.cast(seed, tf.int64) * 1000003 + 1), like(epoch), index], axis=-1)
    draw = tf.cast(augment_lib.seeded_uniform(keys, 1)[..., 0] * views, tf.int64)
    return tf.minimum(draw, views - 1)


def epoch_order(ids, shuffle, seed, epoch):
    """The sample indices of pass `epoch`: a stateless shuffle seeded by `(seed, epoch)`."""
    if not shuffle:
        return ids
    return tf.random.experimental.stateless_shuffle(ids, seed=_seed(seed, epoch, 0))


def pick(values, view):
    """Row `view[b]` of `values[b]` (shape `(batch, views, ...)`) for each b."""
    return tf.gather(values, view, batch_dims=1)


def assemble(parts, view, hashes, outputs):
    """Checks a batch against its views' fingerprints; `(*parts, outputs)`.

    A top-k + quantized-tail record's outputs are decoded to full logits here.
    """
    tf.debugging.assert_equal(views_lib.fingerprint_batch(parts[0]), pick(hashes, view),
                              message=_MISMATCH)
    return (*parts, decode_outputs({k[len(OUT):]: pick(v, view) for k, v in outputs.items()}))


def _batches(count, batch_size, drop_remainder):
    return count // batch_size if drop_remainder else -(-count // batch_size)


def from_memory(inputs, arrays, ids, batch_size, shuffle, seed, drop_remainder, augment,
                views, view_order):
    """The pipeline over inputs held in memory (`inputs`: the element's tuple of leaves)."""
    inputs = tf.nest.map_structure(tf.constant, inputs)
    hashes = tf.constant(arrays["view_hash"])
    seeds = tf.constant(arrays["view_seeds"])
    outputs = {k: tf.constant(v) for k, v in arrays.items() if k.startswith(OUT)}
    ids = tf.constant(ids, tf.int64)
    inputs_count = int(tf.nest.flatten(inputs[0])[0].shape[0])
    take = lambda tree, rows: tf.nest.map_structure(lambda t: tf.gather(t, rows), tree)  # noqa: E731

    pairs = bool(getattr(augment, "pairs", False))
    if pairs and len(inputs) < 2:
        raise ValueError("A pair augmentation (mixup) mixes labels too: the cached dataset "
                         "must yield (x, y) or (x, y, sample_weight), not x alone.")
    logits = arrays.get(OUT + "logits")
    tail = find_tail_key([k[len(OUT):] for k in arrays if k.startswith(OUT)])
    num_classes = int(logits.shape[-1]) if logits is not None else (tail and tail[2])

    def one_sample(index, epoch):
        view = view_choice(index, epoch, views, seed, view_order)
        view_seed = seeds[index, view]
        if not pairs:
            return index, view, augment(take(inputs[0], index), view_seed)
        other = augment.partner(view_seed, inputs_count)
        x, y = augment.mix(take(inputs[0], index), take(inputs[0], other),
                           inputs[1][index], inputs[1][other], view_seed, num_classes)
        return index, view, x, y

    def one_batch(index, view, x=None, y=None):
        # The augmented x (and mixed y) come from `one_sample`; the rest is gathered.
        parts = (take(inputs[0], index) if x is None else x, *take(inputs[1:], index))
        if y is not None:
            parts = (parts[0], y, *parts[2:])
        return assemble(parts, view, take(hashes, index),
                        {k: take(v, index) for k, v in outputs.items()})

    single = tf.is_tensor(inputs[0])  # one input tensor, not a dict or tuple of them
    batched = augment_lib.batched_form(augment) if single and not pairs else None

    def augmented_batch(index, epoch):
        # The whole batch's views at once: `augment.batched` equals the
        # per-sample calls (checked when the cache was built).
        view = view_choice(index, epoch, views, seed, view_order)
        return one_batch(index, view, batched(take(inputs[0], index), pick(take(seeds, index), view)))

    def one_pass(epoch):
        # The pass's sample order, each index beside the pass number. The
        # maps sit outside `flat_map`: a map inside it is set up anew for
        # every pass, ~0.1 s of each epoch's start on 2 cores. (Each
        # iteration of the pipeline is one pass, so a batch never spans two.)
        order = epoch_order(ids, shuffle, seed, epoch)
        return tf.data.Dataset.from_tensor_slices((order, tf.fill(tf.shape(order), epoch)))

    count = int(ids.shape[0])
    samples = pass_numbers().flat_map(one_pass).apply(
        tf.data.experimental.assert_cardinality(count))
    if augment is None or batched is not None:
        # No per-sample map at all: tf.data pays ~35 µs per map call.
        def gathered(index, epochs):
            if augment is None:
                return one_batch(index, tf.zeros_like(index))
            return augmented_batch(index, epochs[0])

        data = samples.batch(batch_size, drop_remainder=drop_remainder).map(
            gathered, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        # One per-sample map, as a plain `map(augment)` pipeline has.
        data = samples.map(one_sample, num_parallel_calls=tf.data.AUTOTUNE).batch(
            batch_size, drop_remainder=drop_remainder).map(
            one_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def from_source(source, records, count, indices, batch_size, shuffle, seed, drop_remainder,
                augment, views, view_order):
    """The pipeline that reads the inputs from the user's dataset every pass."""
    data = tf.data.Dataset.zip((source.unbatch(), records))
    if indices is not None:
        mask = np.zeros(count, bool)
        mask[indices] = True
        mask = tf.constant(mask)
        data = data.filter(lambda element, record: tf.gather(mask, record["index"]))
        count = int(indices.size)
    data = data.apply(tf.data.experimental.assert_cardinality(count))
    if shuffle:
        data = data.shuffle(count, seed=seed, reshuffle_each_iteration=True)

    def one_pass(epoch):
        # The pass number beside each sample, with no map inside `flat_map`
        # (a map there is set up anew for every pass).
        return tf.data.Dataset.zip((data, tf.data.Dataset.from_tensors(epoch).repeat()))

    def one_sample(pair, epoch):
        element, record = pair
        parts = tuple(element) if isinstance(element, (tuple, list)) else (element,)
        view = view_choice(record["index"], epoch, views, seed, view_order)
        if augment is not None:
            parts = (augment(parts[0], record["view_seeds"][view]), *parts[1:])
        return parts, view, record

    def one_batch(parts, view, record):
        outputs = {k: v for k, v in record.items() if k.startswith(OUT)}
        return assemble(parts, view, record["view_hash"], outputs)

    return (pass_numbers().flat_map(one_pass)
            .apply(tf.data.experimental.assert_cardinality(count))
            .map(one_sample, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size, drop_remainder=drop_remainder)
            .map(one_batch, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def shuffled_arrays(arrays, batch_size, seed, drop_remainder=False):
    """`arrays` (a tuple of equal-length arrays) in batches, reshuffled every pass
    exactly as a cache's `dataset(shuffle=True, seed=seed)` orders its samples.

    For a baseline that must see the same sample order as a cached run.
    """
    arrays = tf.nest.map_structure(tf.constant, tuple(arrays))
    count = int(tf.nest.flatten(arrays)[0].shape[0])
    ids = tf.range(count, dtype=tf.int64)

    def one_pass(epoch):
        order = tf.data.Dataset.from_tensor_slices(epoch_order(ids, True, seed, epoch))
        return order.batch(batch_size, drop_remainder=drop_remainder)

    return (pass_numbers().flat_map(one_pass)
            .apply(tf.data.experimental.assert_cardinality(_batches(count, batch_size, drop_remainder)))
            .map(lambda rows: tf.nest.map_structure(lambda t: tf.gather(t, rows), arrays),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
