"""Run by tests/teachers/caching/test_store.py: one of two processes that build
(or load) the SAME on-disk teacher cache at once.

    cache_share.py CACHE_PATH OUT.npz

Both processes build the same teacher (fixed seed) and data, call
`keras_kd.teachers.caching.teacher_cache.build(..., path=CACHE_PATH)`, read the whole cached
pipeline and save the (x, logits) they got to OUT.npz. Prints one JSON line.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_kd.teachers.caching.teacher_cache import build, crop_flip  # noqa: E402
from tests.helpers.models import tiny_cnn  # noqa: E402


def main(path, out):
    keras.utils.set_random_seed(0)
    teacher = tiny_cnn(16, name="teacher")
    rng = np.random.default_rng(0)
    x = rng.random((96, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 96).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    built = build(teacher, data, path=path, augment=crop_flip, views=2, part_size=32)
    xs, logits = [], []
    for xb, _, outputs in built.dataset(batch_size=16):
        xs.append(xb.numpy())
        logits.append(outputs["logits"].numpy())
    np.savez(out, x=np.concatenate(xs), logits=np.concatenate(logits))
    print(json.dumps({"samples": built.num_samples, "pid": os.getpid()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
