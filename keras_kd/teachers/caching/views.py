"""Sample fingerprints and augmentation views for the teacher cache.

A cached teacher output is only valid for the exact pixels the teacher saw.
Every sample therefore gets a fingerprint (farmhash Fingerprint64 of its
bytes, `tf.fingerprint`), and every augmented view the fingerprint of the
augmented image. Views are made by `augment(x, seed)`, a function of the
sample and a stateless seed `[base_seed, index * views + view]`, so the
same view can be replayed bit for bit during training.
"""

import inspect

import numpy as np
import tensorflow as tf

from keras_kd.teachers.caching.augment import crop_flip  # noqa: F401  (its former home)

# Op types that draw from a global or stateful generator (or write a
# variable, as Keras's SeedGenerator does): an augmentation using them gives
# another image on every call, so a cached teacher output would not match.
_STATEFUL_PREFIXES = ("Random", "Stateful", "Rng")
_STATEFUL_TYPES = {"Multinomial", "TruncatedNormal", "ParameterizedTruncatedNormal",
                   "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"}


def features(element):
    """The model inputs of a dataset element `x`, `(x,)`, `(x, y)` or `(x, y, w)`."""
    return element[0] if isinstance(element, (tuple, list)) else element


def fingerprint_batch(x):
    """One int64 fingerprint per row of a (possibly nested) batch `x`.

    Order-sensitive within a sample (it hashes the raw bytes) and per sample,
    so a flipped image, a permuted batch or a changed pixel all change it.
    """
    leaves = tf.nest.flatten(x)
    hashes = [tf.fingerprint(leaf) for leaf in leaves]  # (batch, 8) uint8 each
    joined = hashes[0] if len(hashes) == 1 else tf.fingerprint(tf.concat(hashes, axis=1))
    return tf.reshape(tf.bitcast(joined, tf.int64), [-1])


def fingerprint_sample(x):
    """The int64 fingerprint of one (unbatched) sample."""
    return fingerprint_batch(tf.nest.map_structure(lambda t: t[None], x))[0]


def view_seeds(index, views, base_seed):
    """The stateless seeds `[base_seed, index * views + v]` of a sample's views, (views, 2)."""
    index = tf.cast(index, tf.int64)
    ids = index * views + tf.range(views, dtype=tf.int64)
    return tf.stack([tf.fill([views], tf.cast(base_seed, tf.int64)), ids], axis=1)


def augment_identity(augment):
    """A string that changes when `augment` is another function (name and code)."""
    if augment is None:
        return "none"
    name = f"{getattr(augment, '__module__', '?')}.{getattr(augment, '__qualname__', repr(augment))}"
    code = getattr(augment, "__code__", None)
    if code is None:
        return name
    # Bytecode and plain constants: stable across processes (a nested code
    # object's repr holds a memory address, so those are skipped).
    consts = [c for c in code.co_consts if not inspect.iscode(c)]
    return f"{name}:{code.co_code.hex()}:{consts!r}"


def _stateful_ops(graph):
    found = []
    for op in graph.get_operations():
        kind = op.type
        if kind.startswith("Stateless"):
            continue
        if kind.startswith(_STATEFUL_PREFIXES) or kind in _STATEFUL_TYPES:
            found.append(kind)
    return sorted(set(found))


def check_stateless(augment, sample, pairs=False):
    """Refuses an `augment(x, seed)` that is not a pure function of its seed.

    Two checks: its traced graph may hold no stateful random op (the global
    generator, `tf.random.Generator`, Keras's `SeedGenerator`), and two calls
    with the same seed must give the same bytes.
    """
    if not callable(augment):
        raise TypeError(f"augment must be a function (x, seed) -> x, got {augment!r}.")
    seed = tf.constant([7, 11], tf.int64)
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), sample)
    # A pair augmentation (mixup) is checked on the sample mixed with itself.
    traced = tf.function((lambda x, s: augment(x, s, x)) if pairs else augment)
    try:
        graph = traced.get_concrete_function(spec, tf.TensorSpec([2], tf.int64)).graph
    except Exception as error:  # the user's function: any failure is reported with its cause
        raise TypeError(
            f"augment {getattr(augment, '__name__', augment)!r} must take (x, seed) where x is "
            f"one sample of spec {spec} and seed an int64 tensor of shape (2,), and return the "
            f"augmented x; calling it failed: {error}") from error
    stateful = _stateful_ops(graph)
    first = fingerprint_sample(traced(sample, seed))
    again = fingerprint_sample(traced(sample, seed))
    if stateful or int(first) != int(again):
        why = (f"its graph holds the stateful ops {stateful}" if stateful
               else "two calls with the same seed gave different images")
        raise ValueError(
            f"augment {getattr(augment, '__name__', augment)!r} is not a stateless function of "
            f"its seed ({why}), so the teacher's cached outputs could not be replayed on the "
            "same view. Write it with TensorFlow's stateless random ops and the seed it is "
            "given, e.g. tf.image.stateless_random_flip_left_right(x, seed) and "
            "tf.image.stateless_random_crop(x, size, seed); not tf.image.random_*, "
            "tf.random.uniform, tf.random.Generator or Keras augmentation layers.")


def make_views(x, index, views, base_seed, augment, partner=None):
    """`(views_x, seeds, view_hashes)` for one sample: views stacked on a new axis 0.

    `partner(seed)` gives the partner sample of a pair augmentation (mixup)."""
    seeds = view_seeds(index, views, base_seed)
    if augment is None:
        stacked = tf.nest.map_structure(lambda t: tf.repeat(t[None], views, axis=0), x)
    else:
        per_view = [augment(x, seeds[v]) if partner is None else
                    augment(x, seeds[v], partner(seeds[v])) for v in range(views)]
        stacked = tf.nest.map_structure(lambda *ts: tf.stack(ts), *per_view)
    return stacked, seeds, fingerprint_batch(stacked)


def first_mismatch(stored, current):
    """Index of the first differing fingerprint and the number that differ."""
    stored, current = np.asarray(stored), np.asarray(current)
    differ = np.flatnonzero(stored != current)
    return (int(differ[0]), int(differ.size)) if differ.size else (None, 0)


