"""Run by tests/test_determinism.py: one seeded, op-deterministic training run.

    determinism_run.py [--seed S]

Seeds everything with `keras.utils.set_random_seed(S)` and turns on
`tf.config.experimental.enable_op_determinism()`, then distils a small CNN
teacher into a student with BatchNormalization and Dropout (random masks
every step) through KD + FeatureMSE (adapter) + RKD, with Adam, on 256
digits images shuffled every epoch (tf.data shuffle seeded by S), 2 epochs
of batch 32. Prints one JSON line: the epoch losses and a SHA-256 checksum
of every distiller weight and optimizer variable.
"""

import argparse
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import losses  # noqa: E402


def model(width, name, student):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(width, 3, padding="same", name="conv1")(inputs)
    if student:
        x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(width * 2, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if student:
        x = keras.layers.Dropout(0.3, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name=name)


def checksum(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()

    x, y = keras_kd.datasets.load("digits", "train", as_numpy=True)
    data = (tf.data.Dataset.from_tensor_slices((x[:256], y[:256]))
            .shuffle(256, seed=args.seed, reshuffle_each_iteration=True)
            .batch(32))
    terms = [losses.KD(temperature=4.0),
             losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint"),
             losses.RKD("gap", "gap")]
    distiller = keras_kd.Distiller(model(16, "teacher", False), model(8, "student", True),
                                   losses=terms, student_loss_weight=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss="sparse_categorical_crossentropy")
    # shuffle=False: the tf.data pipeline above shuffles (fit cannot shuffle a Dataset).
    history = distiller.fit(data, epochs=2, verbose=0, shuffle=False)
    arrays = distiller.get_weights() + [v.numpy() for v in distiller.optimizer.variables]
    print(json.dumps({
        "seed": args.seed,
        "loss": [float(v) for v in history.history["loss"]],
        "checksum": checksum(arrays),
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
