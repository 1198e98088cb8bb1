"""Run by tests/test_distribute.py in a fresh process: the same global batch
on 1 device and on a 2-replica MirroredStrategy must give the same losses and
weights. Prints one JSON line."""

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

from shared_distiller import build  # noqa: E402  (tests/helpers/scripts, on sys.path)


def run(strategy, weights, data):
    with strategy.scope():
        distiller = build()
        distiller.set_weights(weights)
        history = distiller.fit(data, epochs=1, verbose=0, shuffle=False).history
    return distiller, {k: float(v[-1]) for k, v in history.items()}


def main():
    keras.utils.set_random_seed(0)
    weights = build().get_weights()
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 48).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # global batch 16, 3 steps
    one, one_logs = run(tf.distribute.OneDeviceStrategy("/cpu:0"), weights, data)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two, two_logs = run(mirrored, weights, data)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(one.get_weights(), two.get_weights()))
    # Semi-supervised: labels only in the first 5 samples of each global batch,
    # so the replicas see different numbers of labeled samples (5 and 0).
    y_semi = np.where(np.arange(48) % 16 < 5, y, -1).astype(np.int32)
    semi = tf.data.Dataset.from_tensor_slices((x, y_semi)).batch(16)
    semi_one, semi_one_logs = run(tf.distribute.OneDeviceStrategy("/cpu:0"), weights, semi)
    semi_two, semi_two_logs = run(mirrored, weights, semi)
    semi_diff = max(float(np.abs(a - b).max())
                    for a, b in zip(semi_one.get_weights(), semi_two.get_weights()))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "one": one_logs, "two": two_logs,
                      "max_weight_diff": diff, "semi_one": semi_one_logs,
                      "semi_two": semi_two_logs, "semi_max_weight_diff": semi_diff}))


if __name__ == "__main__":
    sys.exit(main())
