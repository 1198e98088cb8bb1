"""A run's data: the configured dataset as batched tf.data pipelines.

TensorFlow is imported inside the functions, so that validating a config
(`keras-kd distill --validate-only`) never imports it.
"""

def _pipeline(source, ds, training, seed):
    """Batched tf.data pipeline from arrays or an unbatched dataset."""
    import tensorflow as tf

    if isinstance(source, tuple):
        source = tf.data.Dataset.from_tensor_slices(
            (tf.cast(source[0], tf.float32), tf.cast(source[1], tf.int32)))
    if training and ds["shuffle_buffer"]:
        source = source.shuffle(ds["shuffle_buffer"], seed=seed, reshuffle_each_iteration=True)
    if training and ds["augment"] == "cifar":
        source = source.map(cifar_augment, num_parallel_calls=tf.data.AUTOTUNE)
    if ds["normalize"]:
        mean = tf.constant(ds["normalize"]["mean"], tf.float32)
        std = tf.constant(ds["normalize"]["std"], tf.float32)
        source = source.map(lambda x, y: ((x - mean) / std, y),
                            num_parallel_calls=tf.data.AUTOTUNE)
    return source.batch(ds["batch_size"]).prefetch(tf.data.AUTOTUNE)


def cifar_augment(image, label):
    """The RepDistiller/CRD augmentation: pad 4 pixels with zeros, take a
    random crop of the original size, flip left-right with probability ½."""
    import tensorflow as tf

    shape = tf.shape(image)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.random_crop(padded, shape)
    return tf.image.random_flip_left_right(image), label


def run_sources(cfg, train_data=None, test_data=None):
    """`(train, validation, test)` sources before batching: `(x, y)` arrays or
    `tf.data` datasets (a ready batched training pipeline stays as given).

    `validation` is None without `dataset.validation_split` or
    `dataset.validation`. A `validation_split` is carved out of the training
    source by `keras_kd.datasets.validation_split` (stratified, fixed by the
    run's `seed`): the training source returned has those samples removed.
    The test split is never part of it.
    """
    from keras_kd import datasets

    ds = cfg["dataset"]

    def source(given, split):
        if given is None:
            given = datasets.load(ds["name"], split, data_dir=ds["data_dir"])
        return tuple(given) if isinstance(given, (tuple, list)) else given

    train, test = source(train_data, ds["train_split"]), source(test_data, ds["test_split"])
    validation = None
    if ds.get("validation") is not None:
        validation = source(None, ds["validation"])
    elif ds.get("validation_split") is not None:
        train, validation = carve_validation(train, ds["validation_split"], cfg["seed"])
    return train, validation, test


def carve_validation(train, fraction, seed):
    """`(train, validation)` of arrays or an unbatched `tf.data` dataset,
    split by `keras_kd.datasets.validation_indices` (a dataset is read once
    for its labels, then filtered by sample index: it must give its samples
    in the same order on every pass, as `keras_kd.datasets.load` does)."""
    from keras_kd import datasets

    key = "dataset.validation_split"
    if isinstance(train, tuple):
        x, y = train[0], train[1]
        return datasets.validation_split(x, y, fraction, seed, name=key)
    import numpy as np
    import tensorflow as tf

    if _is_batched(train):
        raise ValueError(f"{key}: the training data is a ready batched pipeline, which cannot "
                         "be split by sample; pass (x, y) arrays or an unbatched dataset, or "
                         "name a validation split with dataset.validation")
    labels = np.array([y for _, y in train.as_numpy_iterator()])
    keep, held = datasets.validation_indices(labels, fraction, seed, name=key)
    held_out = np.zeros(len(labels), bool)
    held_out[held] = True
    table = tf.constant(held_out)

    def part(validation, count):
        picked = train.enumerate().filter(lambda i, _: table[i] == validation)
        # The counts are known: an epoch's length stays known to Keras.
        return picked.map(lambda _, element: element).apply(
            tf.data.experimental.assert_cardinality(count))

    return part(False, len(keep)), part(True, len(held))


def load_run_data(cfg, train_data, test_data):
    """`(train, validation, test, train_source)`: the batched pipelines
    (`validation` None when the config has none) and the training source
    they were made from (what a teacher cache caches)."""
    train_source, validation, test = run_sources(cfg, train_data, test_data)
    ds, seed = cfg["dataset"], cfg["seed"]
    if isinstance(train_source, tuple) or not _is_batched(train_source):
        train = _pipeline(train_source, ds, True, seed)
    else:
        train = train_source  # a ready pipeline: used as is
    validation = None if validation is None else _pipeline(validation, ds, False, seed)
    return train, validation, _pipeline(test, ds, False, seed), train_source


def _is_batched(dataset):
    spec = dataset.element_spec
    first = spec[0] if isinstance(spec, tuple) else spec
    return first.shape.rank is not None and first.shape.rank >= 1 and first.shape[0] is None


def count_steps(dataset):
    import tensorflow as tf

    count = int(dataset.cardinality())
    if count == tf.data.INFINITE_CARDINALITY:
        raise ValueError("dataset: the training data is infinite; cannot count an epoch")
    if count < 0:
        count = sum(1 for _ in dataset)
    if count == 0:
        raise ValueError("dataset: the training split is empty")
    return count


def count_samples(batches):
    """Samples in a finite batched `(x, y)` pipeline (one pass over it)."""
    import tensorflow as tf

    return int(sum(int(tf.shape(tf.nest.flatten(batch[0])[0])[0]) for batch in batches))


def input_shape_and_classes(cfg, train, teacher):
    from keras_kd import datasets

    ds = cfg["dataset"]
    shape = ds["input_shape"] or tuple(train.element_spec[0].shape[1:])
    classes = ds["num_classes"]
    if classes is None:
        try:
            classes = datasets.info(ds["name"])["num_classes"]
        except ValueError:
            classes = None
    if classes is None and teacher is not None and teacher.outputs:
        classes = int(teacher.outputs[0].shape[-1])
    if classes is None:
        try:
            import tensorflow_datasets as tfds

            classes = tfds.builder(ds["name"], data_dir=ds["data_dir"]).info.features[
                "label"].num_classes
        except Exception:
            raise ValueError(
                f"dataset.num_classes: cannot tell how many classes '{ds['name']}' has; "
                "set dataset.num_classes") from None
    return tuple(int(d) for d in shape), int(classes)
