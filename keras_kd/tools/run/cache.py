"""The `teacher_cache:` section of a run config: the cached training pipeline.

    teacher_cache: {views: 16, top_k: null, tail_bits: null, path: null, seed: 0}

The configured training split is cached unshuffled; the configured
augmentation becomes a stateless `augment(x, seed)` (the CIFAR crop + flip,
then the normalization), of which `views` are stored per sample; training
replays one cached view per sample each epoch, reshuffled per sample.
`path` defaults to `OUTPUT_DIR/teacher_cache`.
"""

import os

import tensorflow as tf

from keras_kd import datasets
from keras_kd.losses.topk_kd import TopKKD
from keras_kd.taps.views import LOGITS
from keras_kd.teachers.caching.augment import with_batched
from keras_kd.teachers.caching.teacher_cache import DEFAULT_TEMPERATURES, build, crop_flip


def _normalizer(ds):
    if not ds["normalize"]:
        return lambda x: x
    mean = tf.constant(ds["normalize"]["mean"], tf.float32)
    std = tf.constant(ds["normalize"]["std"], tf.float32)
    return lambda x: (x - mean) / std


def _normalized_crop_flip(normalize):
    def crop_flip_normalize(x, seed):  # pad with zeros in pixel space, as RepDistiller
        return normalize(crop_flip(x, seed))

    # The per-pixel normalization broadcasts over a batch: one map per batch.
    return with_batched(crop_flip_normalize, lambda x, seeds: normalize(crop_flip.batched(x, seeds)))


def _is_batched(dataset):
    spec = dataset.element_spec
    first = spec[0] if isinstance(spec, tuple) else spec
    return first.shape.rank is not None and first.shape.rank >= 1 and first.shape[0] is None


def cached_train_data(cfg, train_data, teacher, terms):
    """The training pipeline fed from the teacher cache the config asks for."""
    ds, settings = cfg["dataset"], cfg["teacher_cache"]
    source = train_data
    if source is None:
        source = datasets.load(ds["name"], ds["train_split"], data_dir=ds["data_dir"])
    normalize = _normalizer(ds)
    if isinstance(source, (tuple, list)):
        source = tf.data.Dataset.from_tensor_slices(
            (tf.cast(source[0], tf.float32), tf.cast(source[1], tf.int32)))
    if _is_batched(source):
        if settings["views"] > 1:
            raise ValueError("teacher_cache.views > 1 needs the configured dataset (its "
                             "augmentation is replayed per view), not a ready batched pipeline.")
        data, augment = source, None  # a ready pipeline: cached as is
    elif ds["augment"] == "cifar":
        data, augment = source.batch(ds["batch_size"]), _normalized_crop_flip(normalize)
    else:
        data, augment = source.map(lambda x, y: (normalize(x), y)).batch(ds["batch_size"]), None
    taps = [tap for term in terms for tap in term.teacher_taps if tap != LOGITS]
    temperatures = sorted({t.temperature for t in terms if isinstance(t, TopKKD)}) or DEFAULT_TEMPERATURES
    path = settings["path"] or os.path.join(cfg["output_dir"], "teacher_cache")
    built = build(teacher, data, taps, path, augment=augment, views=settings["views"],
                  top_k=settings["top_k"], temperatures=temperatures, seed=settings["seed"],
                  tail_bits=settings.get("tail_bits"))
    return built.dataset(ds["batch_size"], shuffle=bool(ds["shuffle_buffer"]), seed=cfg["seed"])
