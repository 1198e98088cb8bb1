"""A cache of teacher outputs per sample and augmented view, replayed in training.

With a frozen teacher, its outputs on a given input never change; computing
them once turns each later epoch into the cost of the student alone. The
cache is keyed by sample index, so the cached pipeline can be shuffled per
sample, re-batched and subset; with `augment(x, seed)` (stateless random
ops) it stores K views per sample, each with its seed, and replays exactly
those pixels (Beyer et al. 2022, "a good teacher is patient and
consistent"; FKD, Shen & Xing 2022). Every replayed view is checked against
the fingerprint of the view the teacher saw. See docs/cache.md.
"""

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from keras_kd.atomic import write_atomically, write_json
from keras_kd.teachers.caching import store
from keras_kd.teachers.caching import replay
from keras_kd.teachers.caching.compute import TeacherPass, read_inputs
from keras_kd.teachers.caching.augment import Mixup, is_pair_augment  # noqa: F401  (re-exported)
from keras_kd.teachers.caching import augment as augment_lib
from keras_kd.teachers.caching import views as views_lib
from keras_kd.teachers.caching.tail import check_tail_bits
from keras_kd.teachers.caching.digest import architecture_digest, teacher_digests
from keras_kd.losses.topk_kd import (  # noqa: F401  (check_cached_outputs: re-exported)
    TOPK_INDICES,
    TOPK_VALUES,
    cached_temperatures,
    check_cached_outputs,
    rest_key,
    topk_summary,
)
from keras_kd.taps.views import LOGITS

_CHECK_BATCHES = 2
crop_flip = views_lib.crop_flip  # the CIFAR crop + flip, stateless
_OUT = replay.OUT
DEFAULT_TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
MEMORY_LIMIT = 2**31  # bytes of outputs (and of inputs) kept in memory by default


def _check_dataset(dataset):
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"cache needs a batched tf.data.Dataset, got {type(dataset).__name__}; "
            "wrap arrays with tf.data.Dataset.from_tensor_slices((x, y)).batch(n).")
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            "The dataset to cache is infinite (it ends in .repeat() or similar), so the "
            "caching pass would never end. Cache the finite dataset (one epoch, no .repeat()) "
            "and repeat the cached pipeline instead: cache(teacher, ds).repeat().")
    first = views_lib.features(dataset.element_spec)
    for leaf in tf.nest.flatten(first):
        if leaf.shape.rank == 0:
            raise ValueError(
                f"cache needs a batched dataset, but its inputs are scalars ({leaf}); "
                "add .batch(n).")


def _first_hashes(dataset):
    return [views_lib.fingerprint_batch(views_lib.features(b)).numpy()
            for b in dataset.take(_CHECK_BATCHES)]


def _refuse_unreproducible(dataset):
    first, again = _first_hashes(dataset), _first_hashes(dataset)
    if not first:
        raise ValueError("The dataset to cache is empty.")
    if len(first) != len(again) or any(
            a.shape != b.shape or (a != b).any() for a, b in zip(first, again)):
        raise ValueError(
            "The dataset gives different batches on two passes (shuffled or randomly "
            "augmented before caching), so cached teacher outputs would not match the "
            "inputs. Cache a deterministic pipeline (no shuffle, no random augmentation): "
            "pass the augmentation as cache(..., augment=fn, views=K) with fn(x, seed) "
            "built from stateless ops, and shuffle the cached pipeline "
            "(cache(..., shuffle=True)).")


def _settings(teacher, taps, augment, views, top_k, temperatures, seed, part_size, tail_bits):
    arch, weights = teacher_digests(teacher)
    rest_mass = top_k and not tail_bits  # a quantized tail needs no rest mass per T
    return {"format": store.FORMAT_VERSION, "teacher_architecture": arch,
            "teacher_weights": weights, "taps": list(taps), "augment": views_lib.augment_identity(augment),
            "views": views, "top_k": top_k, "tail_bits": tail_bits, "seed": seed,
            "part_size": part_size,
            "temperatures": [float(t) for t in temperatures] if rest_mass else None}


def _refuse_other_settings(path, stored, wanted, teacher):
    if stored.get("teacher_architecture") not in (None, wanted["teacher_architecture"]) and \
            stored["teacher_architecture"] in (architecture_digest(teacher, True),
                                               architecture_digest(teacher, False)):
        # Written by 0.2.0 or earlier, with the teacher frozen or not.
        wanted = {**wanted, "teacher_architecture": stored["teacher_architecture"]}
    if store.FORMAT_VERSION != stored.get("format"):
        raise ValueError(f"The cache at '{path}' has format {stored.get('format')}, this "
                         f"version writes {store.FORMAT_VERSION}; pass overwrite=True to recompute it.")
    missing = [t for t in wanted["taps"] if t not in stored.get("taps", [])]
    if missing:
        raise ValueError(
            f"The cache at '{path}' lacks the taps {missing} (it has {stored.get('taps')}). "
            "Use another path, or overwrite=True, to compute a new cache.")
    what = {"teacher_architecture": "the teacher's architecture",
            "teacher_weights": "the teacher's weights", "augment": "the augment function",
            "views": "views", "top_k": "top_k", "tail_bits": "tail_bits", "seed": "seed",
            "temperatures": "temperatures"}
    differ = [f"{label} ({stored.get(key)!r} cached, {wanted[key]!r} now)" for key, label in
              what.items() if stored.get(key) != wanted[key]]
    if differ:
        raise ValueError(
            f"The cache at '{path}' was computed with another teacher or settings: "
            f"{'; '.join(differ)}. Its outputs would not belong to this teacher; the cache is "
            "left untouched. Use a new path, or pass overwrite=True to replace it.")


class TeacherCache:
    """Teacher outputs per sample and view, replayed with their inputs on demand.

    Made by `build`; `dataset(...)` gives the training pipeline. Attributes:
    `num_samples`, `views`, `top_k`, `tail_bits`, `path` (None in memory), `nbytes` (the
    outputs' bytes; on disk, the compressed part files), `inputs_in_memory`
    (the inputs were copied when the cache was built, so training reads
    them and not the source dataset).
    """

    def __init__(self, source, records, num_samples, views, augment, top_k, path, nbytes,
                 arrays=None, inputs=None, tail_bits=None):
        self._source, self._records = source, records
        self._arrays, self._inputs = arrays, inputs
        self.num_samples, self.views, self.augment = num_samples, views, augment
        self.top_k, self.tail_bits, self.path, self.nbytes = top_k, tail_bits, path, nbytes
        self.inputs_in_memory = inputs is not None and arrays is not None

    def dataset(self, batch_size, shuffle=False, seed=0, indices=None, drop_remainder=False,
                view_order="random"):
        """`(x, y[, w], teacher_outputs)` batches: each sample's cached view and outputs.

        Args:
            batch_size: any batch size (the cache is per sample).
            shuffle: reshuffle the samples every pass (epoch), seeded by `seed`.
            seed: seeds the shuffle and the view replayed on each pass.
            indices: train on these sample indices only (a subset, e.g. a split).
            drop_remainder: drop the last, smaller batch.
            view_order: with K > 1 views, which one pass `e` replays for a
                sample: `"random"` (a uniform draw seeded by `(seed, e,
                sample)`) or `"cycle"` (view `(e + offset) mod K`, the offset
                a seeded draw per sample: every view once per K epochs).

        Every batch is checked against the fingerprints of the views the
        teacher saw; a sample that changed since caching (another order,
        another pixel) stops training with `InvalidArgumentError`.
        """
        replay.check_view_order(view_order)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        count = self.num_samples
        if indices is not None:
            indices = np.unique(np.asarray(indices, dtype=np.int64))
            if indices.size == 0 or indices.min() < 0 or indices.max() >= count:
                raise ValueError(f"indices must be sample indices in [0, {count}), got "
                                 f"{indices.size} of them in [{indices.min() if indices.size else '-'}, "
                                 f"{indices.max() if indices.size else '-'}].")
        options = dict(batch_size=int(batch_size), shuffle=shuffle, seed=seed,
                       drop_remainder=drop_remainder, augment=self.augment, views=self.views,
                       view_order=view_order)
        if is_pair_augment(self.augment) and not self.inputs_in_memory:
            raise ValueError(f"This cache's augment {self.augment.__qualname__} mixes samples "
                             "in pairs, which needs the inputs in memory; load it with "
                             "build(..., in_memory=True).")
        if self.inputs_in_memory:
            ids = np.arange(count, dtype=np.int64) if indices is None else indices
            return replay.from_memory(self._inputs, self._arrays, ids, **options)
        return replay.from_source(self._source, self._records, count, indices, **options)


def build(teacher, dataset, taps=(LOGITS,), path=None, augment=None, views=1, top_k=None,
          temperatures=DEFAULT_TEMPERATURES, seed=0, overwrite=False, part_size=8192,
          in_memory=None, tail_bits=None):
    """Computes (or loads and checks) the teacher cache; returns a `TeacherCache`.

    The arguments are those of `cache`, plus `part_size` (samples per on-disk
    shard: the unit of resumption) and `in_memory`: None keeps the outputs
    in memory when under 2 GiB (else streams them from disk every epoch),
    and copies the inputs into memory when they are under 2 GiB too, so
    training gathers samples by index instead of re-reading the dataset
    (see `replay.py`); True always keeps both; False streams the outputs
    and re-reads the dataset every epoch.
    """
    _check_dataset(dataset)
    taps = tuple(dict.fromkeys((LOGITS,) + ((taps,) if isinstance(taps, str) else tuple(taps))))
    if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or views < 1:
        raise ValueError(f"views must be an integer >= 1, got {views!r}.")
    views = int(views)
    if views > 1 and augment is None:
        raise ValueError(f"views={views} needs an augment(x, seed) function: without "
                         "augmentation every view is the same image. Pass augment=... or views=1.")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}.")
    tail_bits = check_tail_bits(tail_bits, top_k)
    _refuse_unreproducible(dataset)
    first = next(iter(dataset.unbatch().take(1)))
    pairs = is_pair_augment(augment)
    if pairs:  # refused before the teacher pass, not after it
        element = tuple(first) if isinstance(first, (tuple, list)) else (first,)
        if len(element) < 2:
            raise ValueError(f"augment={augment.__qualname__} mixes labels too: the dataset to "
                             "cache must yield (x, y) or (x, y, sample_weight), not x alone.")
        if not tf.is_tensor(element[0]):
            raise ValueError(f"augment={augment.__qualname__} mixes one image tensor with "
                             f"another; this dataset's inputs are {type(element[0]).__name__} "
                             "(several inputs). Mix them in your own pair augmentation.")
    if augment is not None:
        views_lib.check_stateless(augment, views_lib.features(first), pairs=pairs)
        if not pairs:
            augment_lib.check_batched(augment, views_lib.features(next(iter(dataset.take(1)))))
    snapshot = None
    if pairs:  # a partner's pixels and label are read by index: the inputs must be in memory
        snapshot = None if in_memory is False else read_inputs(dataset, _input_limit(in_memory))[1]
        if snapshot is None:
            raise ValueError(
                f"augment={augment.__qualname__} mixes each sample with a partner sample, which "
                "needs the inputs in memory; they are over 2 GiB (or in_memory=False was "
                "passed). Pass in_memory=True if they fit, or use a per-sample augmentation.")
    batch_size = int(tf.nest.flatten(views_lib.features(next(iter(dataset))))[0].shape[0])
    settings = _settings(teacher, taps, augment, views, top_k, temperatures, seed, part_size,
                         tail_bits)
    computer = TeacherPass(teacher, dataset, taps, augment, views, top_k, temperatures, seed,
                           inputs=snapshot, tail_bits=tail_bits)
    if path is None:
        parts = list(computer.parts(0, part_size, batch_size))
        arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        nbytes = sum(v.nbytes for k, v in arrays.items() if k.startswith(_OUT))
        records = tf.data.Dataset.from_tensor_slices(arrays)
        inputs = snapshot if snapshot is not None else (
            None if in_memory is False else read_inputs(dataset, _input_limit(in_memory))[1])
        return TeacherCache(dataset, records, len(arrays["index"]), views, augment, top_k, None,
                            nbytes, arrays, inputs, tail_bits=tail_bits)
    path = os.fspath(path)
    with store.locked(path, f"Waiting for another process writing the teacher cache '{path}'."):
        if overwrite and os.path.exists(path):  # built beside, swapped in when complete
            write_atomically(path, lambda fresh: _write(fresh, computer, settings, part_size,
                                                        batch_size))
        elif os.path.exists(os.path.join(path, store.COMPLETE)):
            _refuse_other_settings(path, store.read_json(os.path.join(path, store.MANIFEST)),
                                   settings, teacher)
        else:
            _write(path, computer, settings, part_size, batch_size)
        complete = store.read_json(os.path.join(path, store.COMPLETE))
        num_parts, count = int(complete["num_parts"]), int(complete["num_samples"])
        stored = store.read_parts(path, num_parts, keys=None if in_memory is not False else {"sample_hash"})
    nbytes = store.disk_bytes(path)
    stream = in_memory is False or (in_memory is None and nbytes > MEMORY_LIMIT)
    current, inputs = read_inputs(dataset, 0 if stream else _input_limit(in_memory))
    _refuse_other_data(path, current, stored["sample_hash"])
    if stream:
        return TeacherCache(dataset, store.stream_parts(path, num_parts), count, views, augment,
                            top_k, path, nbytes, tail_bits=tail_bits)
    return TeacherCache(dataset, tf.data.Dataset.from_tensor_slices(stored), count, views,
                        augment, top_k, path, nbytes, stored, inputs, tail_bits=tail_bits)


def _input_limit(in_memory):
    return None if in_memory is True else MEMORY_LIMIT


def _write(path, computer, settings, part_size, batch_size):
    """Writes (or resumes) the parts of the cache at `path`; caller holds the lock."""
    manifest = os.path.join(path, store.MANIFEST)
    fresh = not os.path.exists(manifest)
    if not fresh:  # an interrupted pass: resume after its whole parts
        stored = store.read_json(manifest)
        _refuse_other_settings(path, stored, settings, computer.view.model)
        part_size = int(stored["part_size"])
    elif os.path.exists(path) and os.listdir(path):
        raise ValueError(f"'{path}' exists and is not a teacher cache (no {store.MANIFEST}); "
                         "give a new or empty directory.")
    done = store.done_parts(path)
    bar = keras.utils.Progbar(computer.sample_bound(batch_size), unit_name="sample")
    if done:  # resumed: the parts cached before the interruption count
        bar.update(done * part_size)
    for index, arrays in enumerate(computer.parts(done * part_size, part_size, batch_size), done):
        if fresh:
            # Written once the first part is computed: a teacher or setting
            # that fails on the first batches (top_k above the class count,
            # non-finite logits with tail_bits) leaves nothing at `path`.
            os.makedirs(path, exist_ok=True)
            write_json(manifest, settings, indent=1, sort_keys=True)
            fresh = False
        store.save_part(path, index, arrays)
        bar.update(index * part_size + len(arrays["index"]), finalize=False)
    num_parts = store.done_parts(path)
    if num_parts == 0:
        raise ValueError("The dataset to cache is empty.")
    hashes = store.read_parts(path, num_parts, keys={"sample_hash"})["sample_hash"]
    # The bar's total was an upper bound (the last batch may be smaller): it
    # ends at the number of samples cached, as N/N.
    bar.target = int(hashes.size)
    bar.update(int(hashes.size), finalize=True)
    write_json(os.path.join(path, store.COMPLETE), {
        "num_parts": num_parts, "num_samples": int(hashes.size),
        "data_digest": hashlib.sha256(hashes.tobytes()).hexdigest()[:16]}, indent=1,
        sort_keys=True)


def _refuse_other_data(path, current, stored):
    if current.size != stored.size:
        raise ValueError(
            f"The cache at '{path}' was computed on a different dataset: {stored.size} samples "
            f"cached, {current.size} now. The cache is left untouched; use a new path or "
            "overwrite=True.")
    first, count = views_lib.first_mismatch(stored, current)
    if count:
        raise ValueError(
            f"The cache at '{path}' was computed on a different dataset: {count} of "
            f"{stored.size} samples differ or moved, the first at index {first} (fingerprints "
            "are per sample and order-sensitive). The cache is left untouched; use a new path "
            "or overwrite=True.")


def cache(teacher, dataset, taps=(LOGITS,), path=None, *, augment=None, views=1, top_k=None,
          temperatures=DEFAULT_TEMPERATURES, batch_size=None, shuffle=False, seed=0,
          overwrite=False, part_size=8192, tail_bits=None):
    """Computes the teacher's outputs once; returns `(x, y, teacher_outputs)` batches.

    Args:
        teacher: the teacher `keras.Model` (run with `training=False`).
        dataset: a finite, batched, deterministic `tf.data.Dataset` of `x`,
            `(x, y)` or `(x, y, sample_weight)`, read in the same order every
            pass (no shuffle, no random augmentation: pass those below).
        taps: teacher taps to store (`"logits"` always included).
        path: a directory to keep the cache on disk (`tf.data.Dataset.save`,
            GZIP, in shards of 8192 samples). An existing cache there is
            loaded when it was made by the same teacher (architecture and
            weights), settings and data (one fingerprint per sample), and
            refused otherwise; it is never overwritten unless
            `overwrite=True`. An interrupted caching pass resumes. Two
            processes may share it (a lock file beside it).
        augment: `fn(x, seed) -> x` for ONE sample, built from stateless
            random ops (`tf.image.stateless_random_crop`, ...); stateful
            ones are refused. `keras_kd.teachers.caching.teacher_cache.crop_flip` is the CIFAR
            crop + flip.
        views: K augmented views per sample (seed `[seed, index·K + v]`);
            each epoch replays one per sample, chosen by a seeded draw.
        top_k: store only the k largest logits, their classes and the rest
            mass at each of `temperatures`; train with
            `keras_kd.losses.TopKKD` (terms needing full logits refuse it).
        tail_bits: with `top_k`, also store every other class's logit
            quantized to this many bits (1-8; 3 keeps KD at T = 4 within
            0.55% of full KD in 22% of the bytes for 100 classes, k = 10,
            on a trained teacher: docs/cache.md). The cache
            then replays approximate full logits (the top-k exact, the
            others within half a quantization step), which every term
            accepts; no rest mass is stored (`keras_kd.teachers.caching.tail`).
        batch_size: the batch size of the returned pipeline (default: the
            dataset's).
        shuffle: reshuffle the samples every epoch (seeded by `seed`).
        seed: the views' seeds, the shuffle and the view draws.
        overwrite: replace an existing cache at `path` (built beside it,
            swapped in only when complete).
        part_size: samples per on-disk shard (the unit of resumption).

    Returns:
        A `tf.data.Dataset` of `(x, y, teacher_outputs)` batches (or
        `(x, y, sample_weight, teacher_outputs)`, or `(x, teacher_outputs)`),
        `teacher_outputs` a dict tap -> tensor. A `Distiller` fed it skips the
        teacher. Each batch is checked against the fingerprints of the views
        the teacher saw. For subsets or other batch sizes use `build(...)`.

    Example:

    ```python
    train = keras_kd.datasets.load("digits", "train", batch_size=64)
    cached = keras_kd.teachers.caching.cache(teacher, train, shuffle=True)
    distiller.fit(cached, epochs=30)
    ```
    """
    built = build(teacher, dataset, taps, path, augment=augment, views=views, top_k=top_k,
                  temperatures=temperatures, seed=seed, overwrite=overwrite, part_size=part_size,
                  tail_bits=tail_bits)
    if batch_size is None:
        batch_size = int(tf.nest.flatten(views_lib.features(next(iter(dataset))))[0].shape[0])
    return built.dataset(batch_size, shuffle=shuffle, seed=seed)
