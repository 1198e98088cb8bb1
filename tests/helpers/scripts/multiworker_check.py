"""Run by tests/test_multiworker.py: one process of a 2-worker
MultiWorkerMirroredStrategy on 127.0.0.1, or the one-device reference.

    multiworker_check.py worker INDEX PORT0,PORT1 OUT_DIR
    multiworker_check.py single OUT_DIR

Every process builds the same Distiller as tests/helpers/scripts/mirrored_check.py
(tests/helpers/scripts/shared_distiller.py: KD + DKD + NKD + FeatureMSE with an adapter, no BatchNorm) from
the same initial weights and trains 3 SGD steps on the same 48 samples in
global batches of 16. A worker writes OUT_DIR/worker<INDEX>.npz, the
reference OUT_DIR/single.npz (final weights and optimizer iterations), and
each prints one JSON line: its final logs and a checksum of its weights.

Which global batch each step sees: the dataset is batched by the GLOBAL
batch (16) and given `AutoShardPolicy.DATA`. `experimental_distribute_dataset`
(which Keras's fit calls) first rebatches it to the per-replica batch
(16 / 2 workers = 8), so element k is samples [8k, 8k + 8), then shards the
elements by worker: worker w keeps elements w, w + 2, w + 4, ... Step s
therefore runs samples [16s, 16s + 8) on worker 0 and [16s + 8, 16s + 16)
on worker 1: together the one-device batch s. (With `OFF`, both workers
would read the same elements and step 0 would see samples 0-7 twice.)

Keras 3.15's `fit` cannot run under MultiWorkerMirroredStrategy as shipped,
for any model: `Distiller` works around the first bug itself and the workers
call `keras_kd.distribute.patch_keras_multiworker()` for the second (see
keras_kd/distribute.py).
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _configure(argv):
    mode = argv[1]
    if mode == "worker":
        index, ports, out = int(argv[2]), argv[3].split(","), argv[4]
        # TF_CONFIG must be set before the strategy is created.
        os.environ["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        })
        return mode, index, out
    if mode == "single":
        os.environ.pop("TF_CONFIG", None)
        return mode, None, argv[2]
    raise SystemExit(f"unknown mode {mode!r}; use 'worker' or 'single'")


MODE, INDEX, OUT = _configure(sys.argv)

import tensorflow as tf  # noqa: E402

# The strategy must exist before any other TensorFlow work in the process.
if MODE == "worker":
    STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
else:
    STRATEGY = tf.distribute.get_strategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_kd  # noqa: E402
from shared_distiller import build  # noqa: E402  (tests/helpers/scripts, on sys.path)


def checksum(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def dataset():
    rng = np.random.default_rng(0)
    x = rng.random((48, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 48).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # global batch 16, 3 steps
    if os.environ.get("KERAS_KD_CACHE_DIR"):  # the teacher cache (crop+flip), one shared path
        from keras_kd.teachers.caching.teacher_cache import build as build_cache
        from keras_kd.teachers.caching.teacher_cache import crop_flip

        keras.utils.set_random_seed(0)
        cached = build_cache(build().teacher, data, taps=["relu2"], augment=crop_flip, views=int(os.environ.get("KERAS_KD_CACHE_VIEWS", "1")),
                             path=os.environ["KERAS_KD_CACHE_DIR"])
        data = cached.dataset(batch_size=16, seed=4)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def main():
    # Same seed and build order in every process: the same initial weights
    # (the checksum printed below lets the test check it).
    if MODE == "worker":
        keras_kd.distribute.patch_keras_multiworker()
    keras.utils.set_random_seed(0)
    initial = build().get_weights()
    with STRATEGY.scope():
        distiller = build()
        distiller.set_weights(initial)
        history = distiller.fit(dataset(), epochs=1, verbose=0, shuffle=False).history
    weights = distiller.get_weights()
    iterations = int(distiller.optimizer.iterations.numpy())
    name = f"worker{INDEX}" if MODE == "worker" else "single"
    np.savez(os.path.join(OUT, f"{name}.npz"), iterations=iterations,
             **{f"w{i}": w for i, w in enumerate(weights)})
    print(json.dumps({
        "mode": MODE, "index": INDEX,
        "replicas": STRATEGY.num_replicas_in_sync,
        "logs": {k: float(v[-1]) for k, v in history.items()},
        "initial_checksum": checksum(initial),
        "checksum": checksum(weights),
        "iterations": iterations,
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
