"""Datasets: an embedded offline default, local copies, and TFDS by name.

- `"digits"`: the 8×8 handwritten digits (1,797 images, 10 classes) of
  Alpaydin & Kaynak (UCI "Optical Recognition of Handwritten Digits", test
  part), shipped in `keras_kd/data/digits.csv.gz` (the copy scikit-learn
  bundles; see `keras_kd/data/DIGITS_LICENSE.txt`). Works with no network.
  Split deterministically (fixed seed, stratified): 1,438 train / 359 test.
- `"fashion_mnist"`, `"mnist"`: the original IDX files from a local copy
  (`data_dir`, `/usr/share/datasets/<name>` as the Debian package
  `dataset-fashion-mnist` installs it, or Keras's cache
  `~/.keras/datasets/<name>`), else TFDS.
- `"cifar10"`, `"cifar100"`: the original python-pickle batches (CIFAR-10's
  `data_batch_1..5`/`test_batch`, CIFAR-100's `train`/`test` with the 100
  fine labels) from a local copy: `data_dir` (itself, or its
  `cifar-10-batches-py` / `cifar-100-python` folder), else Keras's cache
  (`~/.keras/datasets/cifar-10-batches-py`, and the
  `.../cifar-10-batches-py-target/cifar-10-batches-py` layout that Keras 3's
  `keras.datasets.cifar10.load_data()` leaves; `$KERAS_HOME` instead of
  `~/.keras` when set), else TFDS. The pickles are read with an unpickler
  that only rebuilds numpy arrays.
- any other name: `tensorflow_datasets.load(name, ...)` (needs the internet
  the first time, or a prepared `data_dir`).

When nothing is found, the error lists every place looked.

Images come as float32 NHWC in [0, 1], labels as int32.
"""

import gzip
import os
import pickle
import struct

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS_PATH = os.path.join(_HERE, "data", "digits.csv.gz")
_DIGITS_TEST_FRACTION = 0.2
_SPLIT_SEED = 20150309  # fixed forever: the split is part of the benchmark

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_LOCAL_IDX = ("fashion_mnist", "mnist")

_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "label_key": b"labels",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ("train",),
        "test": ("test",),
        "label_key": b"fine_labels",
    },
}

INFO = {
    "digits": {"input_shape": (8, 8, 1), "num_classes": 10},
    "fashion_mnist": {"input_shape": (28, 28, 1), "num_classes": 10},
    "mnist": {"input_shape": (28, 28, 1), "num_classes": 10},
    "cifar10": {"input_shape": (32, 32, 3), "num_classes": 10},
    "cifar100": {"input_shape": (32, 32, 3), "num_classes": 100},
}


def info(name):
    """`{"input_shape": ..., "num_classes": ...}` of a known dataset."""
    if name not in INFO:
        raise ValueError(f"No built-in info for '{name}'; known: {sorted(INFO)}.")
    return dict(INFO[name])


def _digits_arrays(split):
    with gzip.open(DIGITS_PATH, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.float32)
    images = (table[:, :-1] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    labels = table[:, -1].astype(np.int32)
    rng = np.random.default_rng(_SPLIT_SEED)
    test_mask = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(len(members) * _DIGITS_TEST_FRACTION))
        test_mask[rng.choice(members, size=count, replace=False)] = True
    if split == "train":
        keep = ~test_mask
    elif split == "test":
        keep = test_mask
    elif split == "all":
        keep = np.ones_like(test_mask)
    else:
        raise ValueError(
            f"Unknown split '{split}' for 'digits'; use 'train', 'test' or 'all'."
        )
    return images[keep], labels[keep]


def _idx_candidates(name, data_dir):
    folder = name.replace("_", "-")
    places = []
    if data_dir is not None:
        places += [data_dir, os.path.join(data_dir, folder), os.path.join(data_dir, name)]
    places.append(os.path.join("/usr/share/datasets", folder))
    places.append(os.path.join(os.path.expanduser("~"), ".keras", "datasets", folder))
    return places


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _find_idx(folder, stem):
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    return None


def _local_idx_arrays(name, split, data_dir):
    if split not in _IDX_FILES:
        return None, []
    looked = _idx_candidates(name, data_dir)
    for folder in looked:
        image_file = _find_idx(folder, _IDX_FILES[split][0])
        label_file = _find_idx(folder, _IDX_FILES[split][1])
        if image_file and label_file:
            images = _read_idx(image_file).astype(np.float32) / 255.0
            labels = _read_idx(label_file).astype(np.int32)
            return (images[..., None], labels), looked
    return None, looked


def _keras_homes():
    homes = []
    if os.environ.get("KERAS_HOME"):
        homes.append(os.environ["KERAS_HOME"])
    homes.append(os.path.join(os.path.expanduser("~"), ".keras"))
    return homes


def _cifar_candidates(name, data_dir):
    folder = _CIFAR[name]["folder"]
    places = []
    if data_dir is not None:
        places += [data_dir, os.path.join(data_dir, folder), os.path.join(data_dir, name)]
    for home in _keras_homes():
        datasets_dir = os.path.join(home, "datasets")
        places.append(os.path.join(datasets_dir, folder))
        places.append(os.path.join(datasets_dir, f"{folder}-target", folder))
    return places


# What a CIFAR batch pickle (a dict of numpy arrays, lists and bytes) may
# reference: numpy array reconstruction, nothing else (no code execution
# through a tampered file). numpy < 2 and >= 2 spellings; `_codecs.encode`
# is how Python 3 writes bytes into a protocol-2 pickle.
_PICKLE_GLOBALS = frozenset({
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
})


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"Refusing to load '{module}.{name}' from a CIFAR pickle: only "
            "numpy arrays are expected; the file may be corrupted or malicious."
        )


def _read_cifar_batch(path, label_key):
    with open(path, "rb") as handle:
        batch = _ArrayUnpickler(handle, encoding="bytes").load()
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(
            f"'{path}' is not a CIFAR batch: expected a dict with b'data' and "
            f"{label_key!r}, got {keys}."
        )
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int32).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(
            f"'{path}' is not a CIFAR batch: b'data' has shape {data.shape} "
            f"for {len(labels)} labels; expected (N, 3072), channel-major."
        )
    return data, labels


def _local_cifar_arrays(name, split, data_dir):
    spec = _CIFAR[name]
    if split not in ("train", "test"):
        return None, []
    looked = _cifar_candidates(name, data_dir)
    for folder in looked:
        files = [os.path.join(folder, f) for f in spec[split]]
        if all(os.path.isfile(f) for f in files):
            parts = [_read_cifar_batch(f, spec["label_key"]) for f in files]
            data = np.concatenate([d for d, _ in parts])
            labels = np.concatenate([y for _, y in parts])
            images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            images = images.astype(np.float32) / np.float32(255.0)
            return (images, labels), looked
    return None, looked


EMBEDDED = ("digits",)
LOCAL = _LOCAL_IDX + tuple(_CIFAR)


def _tfds_builder_name(name):
    """The builder of a TFDS name ('glue/cola:2.0.0' -> 'glue'), or None for a
    community dataset ('namespace:name'), which only TFDS's servers know."""
    try:
        from tensorflow_datasets.core import naming
    except ImportError:
        return name.split(":")[0].split("/")[0]
    dataset_name, _ = naming.parse_builder_name_kwargs(name)
    return None if dataset_name.namespace else dataset_name.name


def _closest(name, names):
    import difflib

    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_name(name, data_dir=None):
    """Raises FileNotFoundError, naming the closest known name, unless `load`
    knows `name`: the embedded 'digits', a local dataset (`LOCAL`), or a
    TensorFlow Datasets name, looked up in TFDS's registry of builders
    (`tfds.builder_cls`: nothing is downloaded, TensorFlow is not imported;
    importing tensorflow_datasets takes about a second). A folder
    `data_dir/<name>` (a prepared TFDS copy) and community datasets
    ('namespace:name') are accepted unchecked.

    >>> check_name("digits")
    >>> check_name("digitz")
    Traceback (most recent call last):
    ...
    FileNotFoundError: Unknown dataset 'digitz': not the embedded 'digits', a local dataset (fashion_mnist, mnist, cifar10, cifar100) or a TensorFlow Datasets name; did you mean 'digits'?
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"A dataset name must be a non-empty string, got {name!r}.")
    if name in EMBEDDED or name in LOCAL:
        return
    what = (f"not the embedded 'digits', a local dataset ({', '.join(LOCAL)}) or a "
            "TensorFlow Datasets name")
    try:
        import tensorflow_datasets as tfds
        from tensorflow_datasets.core import registered
    except ImportError:
        raise FileNotFoundError(
            f"Unknown dataset '{name}': {what}" + _closest(name, EMBEDDED + LOCAL)
            + " (tensorflow-datasets, which knows the others, is not installed: "
            "pip install tensorflow-datasets)") from None
    builder = _tfds_builder_name(name)
    if builder is None or (data_dir and os.path.isdir(os.path.join(data_dir, builder))):
        return
    try:
        tfds.builder_cls(builder)
    except registered.DatasetNotFoundError:
        known = EMBEDDED + LOCAL + tuple(registered.list_imported_builders())
        raise FileNotFoundError(f"Unknown dataset '{name}': {what}"
                                + _closest(builder, known)) from None


def _tfds_dataset(name, split, data_dir, looked):
    check_name(name, data_dir)  # a misspelt name: one line, not TFDS's list of 400 names
    import tensorflow as tf
    import tensorflow_datasets as tfds

    try:
        dataset = tfds.load(
            name, split=split, as_supervised=True, data_dir=data_dir,
        )
    except Exception as error:  # TFDS raises many kinds; say where we looked.
        said = str(error).strip().splitlines() or [""]
        where = "".join(f"\n  - {p}" for p in looked)
        raise FileNotFoundError(
            f"Could not load dataset '{name}' (split '{split}'): "
            + ("no local copy, and " if looked else "")
            + f"TensorFlow Datasets failed with {type(error).__name__}: {said[0]}"
            + (f"\nNo local copy was found in:{where}" if looked else "")
            + (f"\nTensorFlow Datasets said:\n{_first_lines(error)}" if len(said) > 1 else "")
            + "\nOn a machine without internet use the embedded 'digits' dataset, or pass "
            "data_dir= pointing at a local copy."
        ) from error

    def convert(image, label):
        if image.dtype == tf.uint8:
            image = tf.cast(image, tf.float32) / 255.0
        image = tf.cast(image, tf.float32)
        if image.shape.rank == 2:
            image = image[..., None]
        return image, tf.cast(label, tf.int32)

    return dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def _first_lines(error, count=5):
    """The start of an error's message (TFDS's can list hundreds of names)."""
    lines = str(error).splitlines()
    return "\n".join(lines[:count]) + (f"\n  ... ({len(lines) - count} more lines)"
                                        if len(lines) > count else "")


def load_arrays(name, split="train", data_dir=None):
    """Returns `(images, labels)` numpy arrays; see the module docstring."""
    source = _source(name, split, data_dir)
    if isinstance(source, tuple):
        return source
    images, labels = [], []
    for x, y in source.batch(1024).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not labels:
        raise ValueError(f"Dataset '{name}' split '{split}' is empty.")
    return np.concatenate(images), np.concatenate(labels)


def _source(name, split, data_dir):
    """Numpy arrays for embedded/local data, a tf.data pipeline for TFDS."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"A dataset name must be a non-empty string, got {name!r}.")
    if name == "digits":
        return _digits_arrays(split)
    looked = []
    if name in _LOCAL_IDX:
        arrays, looked = _local_idx_arrays(name, split, data_dir)
        if arrays is not None:
            return arrays
    elif name in _CIFAR:
        arrays, looked = _local_cifar_arrays(name, split, data_dir)
        if arrays is not None:
            return arrays
    return _tfds_dataset(name, split, data_dir, looked)


def load(
    name,
    split="train",
    batch_size=None,
    shuffle=False,
    seed=0,
    as_numpy=False,
    data_dir=None,
    drop_remainder=False,
):
    """Loads a dataset as a `tf.data.Dataset` of `(image, label)` pairs.

    Args:
        name: `"digits"` (embedded, offline), `"fashion_mnist"`, `"mnist"`,
            `"cifar10"`, `"cifar100"` (local copies first), or any
            TensorFlow Datasets name.
        split: `"train"`, `"test"` (and `"all"` for digits; any TFDS split
            string for TFDS names).
        batch_size: batch the pipeline when given.
        shuffle: shuffle each epoch with `seed` (reshuffled per iteration).
        seed: the shuffle seed.
        as_numpy: return `(images, labels)` numpy arrays instead.
        data_dir: where to look first for a local copy / the TFDS data dir.
        drop_remainder: drop the last incomplete batch.

    Example:

    ```python
    train = keras_kd.datasets.load("digits", "train", batch_size=64, shuffle=True)
    x_test, y_test = keras_kd.datasets.load("digits", "test", as_numpy=True)
    ```
    """
    if as_numpy:
        return load_arrays(name, split, data_dir)
    import tensorflow as tf

    source = _source(name, split, data_dir)
    if isinstance(source, tuple):
        dataset = tf.data.Dataset.from_tensor_slices(source)
        buffer = len(source[1])
    else:
        dataset, buffer = source, 10_000
    if shuffle:
        dataset = dataset.shuffle(
            buffer, seed=seed, reshuffle_each_iteration=True
        )
    if batch_size:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def validation_indices(labels, fraction, seed=0, name="validation_split"):
    """`(train, validation)`: sorted index arrays that carve a validation part
    out of a TRAINING set; the same `labels`, `fraction` and `seed` always
    give the same carve.

    With class labels (one integer per sample) the carve is stratified: of
    each class, `round(fraction · members)` samples (at least one) go to
    validation, drawn with `numpy.random.default_rng(seed)`. Other labels
    (dense, one per pixel) are carved uniformly at random. `name` is the
    setting the error names (`--val-fraction`, `dataset.validation_split`).

    >>> train, val = validation_indices([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)
    >>> len(train), len(val), sorted(set(train) | set(val)) == list(range(8))
    (6, 2, True)
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)) \
            or not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1) of the training split, got "
                         f"{fraction!r}; e.g. 0.1 holds out 10% of it for validation.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if labels.ndim == 1:
        val = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            rng.shuffle(members)
            val.append(members[: max(1, int(round(fraction * len(members))))])
        val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    else:
        order = rng.permutation(len(labels))
        val = np.sort(order[: max(1, int(round(fraction * len(labels))))])
    keep = np.ones(len(labels), bool)
    keep[val] = False
    if not keep.any():
        raise ValueError(f"{name}={fraction} leaves no training examples (of "
                         f"{len(labels)}); lower it or use more data.")
    return np.flatnonzero(keep), val


def validation_split(x, y, fraction, seed=0, name="validation_split"):
    """`((x_train, y_train), (x_val, y_val))`: arrays split by
    `validation_indices(y, fraction, seed)` (stratified by class, fixed by
    `seed`). `keras-kd distill`'s `dataset.validation_split`, `keras-kd
    bench --validation-split` and `keras-kd tune --val-fraction` all carve
    with it.

    ```python
    x, y = keras_kd.datasets.load("digits", "train", as_numpy=True)
    (x_train, y_train), (x_val, y_val) = keras_kd.datasets.validation_split(x, y, 0.2, seed=0)
    ```
    """
    train, val = validation_indices(y, fraction, seed, name)
    return (x[train], y[train]), (x[val], y[val])


UNLABELED = -1


def semi_supervised(labeled, unlabeled, batch_size=32, shuffle=True, seed=0):
    """A pipeline mixing labeled and unlabeled samples for a Distiller.

    Unlabeled samples get the label -1: the Distiller gives them no student
    (hard-label) loss and no compiled metrics, while every distillation term
    (the teacher's soft targets) covers them, the semi-supervised regime of
    distillation (the teacher labels the unlabeled data).

    Args:
        labeled: `(images, labels)` arrays or a `tf.data.Dataset` of pairs,
            integer labels.
        unlabeled: images (an array) or a `tf.data.Dataset` of images.
        batch_size: batch size of the mixed pipeline.
        shuffle: shuffle the union each epoch (with `seed`), so batches mix
            both kinds in proportion.
        seed: the shuffle seed.

    Returns:
        A batched `tf.data.Dataset` of `(image, label)` with label -1 for
        unlabeled samples.

    Example:

    ```python
    x, y = keras_kd.datasets.load("digits", "train", as_numpy=True)
    data = keras_kd.datasets.semi_supervised((x[:144], y[:144]), x[144:])
    distiller.compile(...).fit(data, epochs=30)
    ```
    """
    import tensorflow as tf

    if isinstance(labeled, tuple):
        images, labels = labeled
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(
                f"semi_supervised needs integer class labels, got {labels.dtype}; "
                "convert one-hot labels with labels.argmax(-1)."
            )
        if labels.size and labels.min() < 0:
            raise ValueError("Labeled samples must have labels >= 0 (-1 marks unlabeled).")
        labeled = tf.data.Dataset.from_tensor_slices((np.asarray(images), labels.astype(np.int32)))
    if not isinstance(unlabeled, tf.data.Dataset):
        unlabeled = tf.data.Dataset.from_tensor_slices(np.asarray(unlabeled))
    unlabeled = unlabeled.map(lambda x: (x, tf.constant(UNLABELED, tf.int32)))
    labeled = labeled.map(lambda x, y: (x, tf.cast(y, tf.int32)))
    mixed = labeled.concatenate(unlabeled)
    if shuffle:
        size = int(mixed.cardinality())
        mixed = mixed.shuffle(size if size > 0 else 10_000, seed=seed, reshuffle_each_iteration=True)
    return mixed.batch(batch_size).prefetch(tf.data.AUTOTUNE)
