"""Running `Distiller.fit` under `tf.distribute.MultiWorkerMirroredStrategy`.

Keras 3.15's `fit` does not run under MultiWorkerMirroredStrategy with the
TensorFlow backend, for any model (a plain `Sequential` fails the same way),
because of two bugs in `keras/src/backend/tensorflow/trainer.py`:

1. `_maybe_symbolic_build` calls `strategy.reduce("MEAN", (x, y), axis=None)`
   on the whole batch tuple; MultiWorkerMirroredStrategy tries to turn the
   tuple into a tensor ("Attempt to convert a value (PerReplica...)").
   `Distiller` overrides that method (only shapes are needed: it takes this
   worker's first replica's tensors), so this one needs nothing from you.
2. `reduce_per_replica(..., "auto")` reduces every step's scalar logs with
   `axis=0` ("Invalid reduction dimension 0 for input with 0 dimensions").
   It is a module-level function, so the fix is a patch:
   call `keras_kd.distribute.patch_keras_multiworker()` once in each worker
   before `fit`. It changes only the multi-worker branch.

`tests/test_multiworker.py` runs 2 workers on 127.0.0.1 with both fixes and
checks the one-device losses and weights to 1e-5. See docs/scaling.md.
"""

import keras
import tensorflow as tf


def local_batch(strategy, batch):
    """The first local replica's tensors of a distributed batch (shapes only)."""
    return tf.nest.map_structure(
        lambda v: strategy.experimental_local_results(v)[0]
        if isinstance(v, tf.distribute.DistributedValues) else v,
        batch,
    )


def patch_keras_multiworker():
    """Fixes Keras 3.15's reduction of scalar step logs under
    MultiWorkerMirroredStrategy (bug 2 above). Idempotent."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "keras_kd.distribute patches tf.distribute training, which needs the "
            f"TensorFlow backend (Keras is using '{keras.backend.backend()}'). On JAX, "
            "scale out with keras.distribution.DataParallel instead: "
            "keras.distribution.set_distribution(keras.distribution.DataParallel()). "
            "Keras has no distribution for its PyTorch trainer (one device): for "
            "data-parallel training use KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax."
        )
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "_keras_kd_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                scalar = len(strategy.experimental_local_results(v)[0].shape) == 0
                return strategy.reduce("MEAN", v, axis=None if scalar else 0)
            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica._keras_kd_patched = True
    trainer.reduce_per_replica = reduce_per_replica
