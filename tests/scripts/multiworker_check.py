"""Run by tests/test_multiworker.py: one process of a 2-worker
MultiWorkerMirroredStrategy on 127.0.0.1, or the one-device reference.

    multiworker_check.py worker INDEX PORT0,PORT1 OUT_DIR
    multiworker_check.py single OUT_DIR

Every process builds the same Distiller as tests/scripts/mirrored_check.py
(KD + DKD(warmup_epochs=0) + FeatureMSE with an adapter, no BatchNorm) from
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
for any model (a plain Sequential fails the same way): the workers patch two
Keras internals, `_maybe_symbolic_build` and `reduce_per_replica`; see
`_maybe_symbolic_build_leafwise` and `_patch_keras_multiworker_mean`. Nothing
in keras_kd is patched.
"""

import hashlib
import json
import os
import sys
import types

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
from keras_kd import losses  # noqa: E402


def model(width, name):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(width * 2, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name=name)


def _maybe_symbolic_build_leafwise(self, iterator=None, data_batch=None):
    """Keras 3.15's `TensorFlowTrainer._maybe_symbolic_build`, with one fix.

    Keras takes the first distributed batch and calls
    `strategy.reduce("MEAN", (x, y), axis=None)` on the whole (x, y) tuple.
    `strategy.reduce` takes one DistributedValues, not a nest:
    MirroredStrategy lets the tuple through untouched, but
    MultiWorkerMirroredStrategy (CollectiveAllReduceExtended._reduce_to ->
    cross_device_ops._make_tensor_into_per_replica) tries to convert the
    tuple to a tensor and raises "ValueError: Attempt to convert a value
    (PerReplica:{...}) with an unsupported type". Any Keras model fit on
    (x, y) data under MultiWorkerMirroredStrategy with the TF backend hits
    it. The batch only gives shapes and dtypes to the symbolic build, so take
    this worker's first replica's tensors, leaf by leaf (no collective).
    """
    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tf.nest.map_structure(
                lambda v: self.distribute_strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v,
                batch,
            )
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _patch_keras_multiworker_mean():
    """Keras 3.15 fix #2: `reduce_per_replica(..., "auto")`, which `fit` applies
    to every step's logs, calls `strategy.reduce("MEAN", v, axis=0)` under
    MultiWorkerMirroredStrategy; the logs are scalars, so TensorFlow raises
    "Invalid reduction dimension 0 for input with 0 dimensions". Reduce
    scalars across replicas only (axis=None)."""
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                rank0 = len(strategy.experimental_local_results(v)[0].shape) == 0
                return strategy.reduce("MEAN", v, axis=None if rank0 else 0)
            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica


def build():
    terms = [losses.KD(temperature=4.0), losses.DKD(warmup_epochs=0),
             losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")]
    distiller = keras_kd.Distiller(model(16, "teacher"), model(8, "student"), losses=terms,
                                   student_loss_weight=0.5)
    distiller._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build_leafwise, distiller)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return distiller


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
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def main():
    # Same seed and build order in every process: the same initial weights
    # (the checksum printed below lets the test check it).
    if MODE == "worker":
        _patch_keras_multiworker_mean()
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
