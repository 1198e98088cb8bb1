"""Run by tests/teachers/caching/test_store.py in a fresh process: a Distiller
(KD + DKD + NKD + FeatureMSE, tests/helpers/scripts/shared_distiller.py) trained
from an on-disk teacher cache with 2 crop+flip views on a 2-replica
MirroredStrategy must give the same losses and weights as on one device,
and as the live teacher on the same views; so must a top-4 + 3-bit tail
cache of the same views (its replayed logits decoded in the input pipeline,
on each replica's batch). Prints one JSON line.

    cache_mirrored_check.py CACHE_DIR
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
from shared_distiller import build  # noqa: E402  (tests/helpers/scripts, on sys.path)

from keras_kd.teachers.caching.teacher_cache import build as build_cache  # noqa: E402
from keras_kd.teachers.caching.teacher_cache import crop_flip  # noqa: E402


def run(strategy, weights, data):
    with strategy.scope():
        distiller = build()
        distiller.set_weights(weights)
        history = distiller.fit(data, epochs=1, verbose=0, shuffle=False).history
    return distiller, {k: float(v[-1]) for k, v in history.items()}


def main(cache_dir):
    keras.utils.set_random_seed(0)
    reference = build()
    weights = reference.get_weights()
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 48).astype(np.int32)
    fixed = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    cached = build_cache(reference.teacher, fixed, taps=["relu2"], path=cache_dir,
                         augment=crop_flip, views=2, seed=3)
    data = cached.dataset(batch_size=16, seed=4)  # global batch 16, 3 steps
    one, one_logs = run(tf.distribute.OneDeviceStrategy("/cpu:0"), weights, data)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two, two_logs = run(mirrored, weights, cached.dataset(batch_size=16, seed=4))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights()))
    # The live teacher on the very views the cache replays (outputs dropped).
    views = cached.dataset(batch_size=16, seed=4).map(lambda x, y, outputs: (x, y))
    live, live_logs = run(tf.distribute.OneDeviceStrategy("/cpu:0"), weights, views)
    live_diff = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), live.get_weights()))
    tail = build_cache(reference.teacher, fixed, taps=["relu2"], path=cache_dir + "_tail",
                       augment=crop_flip, views=2, seed=3, top_k=4, tail_bits=3)
    tail_one, tail_one_logs = run(tf.distribute.OneDeviceStrategy("/cpu:0"), weights,
                                  tail.dataset(batch_size=16, seed=4))
    tail_two, tail_two_logs = run(mirrored, weights, tail.dataset(batch_size=16, seed=4))
    tail_diff = max(float(np.abs(a - b).max())
                    for a, b in zip(tail_one.get_weights(), tail_two.get_weights()))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "one": one_logs, "two": two_logs,
                      "live": live_logs, "max_weight_diff": diff, "live_max_weight_diff": live_diff,
                      "tail_one": tail_one_logs, "tail_two": tail_two_logs,
                      "tail_max_weight_diff": tail_diff}))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
