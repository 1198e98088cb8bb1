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


def load_run_data(cfg, train_data, test_data):
    from keras_kd import datasets

    ds = cfg["dataset"]
    out = []
    for given, split, training in ((train_data, ds["train_split"], True),
                                   (test_data, ds["test_split"], False)):
        if given is None:
            given = datasets.load(ds["name"], split, data_dir=ds["data_dir"])
        if isinstance(given, (tuple, list)):
            given = tuple(given)
        elif training and _is_batched(given):
            out.append(given)  # a ready pipeline: used as is
            continue
        out.append(_pipeline(given, ds, training, cfg["seed"]))
    return out


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
