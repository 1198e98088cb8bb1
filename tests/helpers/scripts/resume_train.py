"""Run by tests/test_resume.py: a Distiller trained under
`keras.callbacks.BackupAndRestore`, optionally SIGKILLed mid-run.

    resume_train.py WORKDIR [--save-freq epoch|N] [--kill-at-step S]

Trains KD + FeatureMSE (with an adapter) from a small CNN teacher to a
smaller CNN student with BatchNormalization (moving statistics to restore),
with Adam (moment slots to restore) and a per-step LossWeightScheduler
warming the kd weight up over 4 epochs (a schedule to resume), on the first 64 digits
training images in batches of 8 (8 steps per epoch), 4 epochs, unshuffled.
Seeds are fixed and op determinism is on, so two runs are bit-identical.

The backup lives in WORKDIR/backup. With `--kill-at-step S` the process
SIGKILLs itself right after global step S (optimizer.iterations == S), after
BackupAndRestore's own batch-end hook has run. A later run with the same
WORKDIR resumes from the backup. A run that finishes writes
WORKDIR/final.npz (every distiller weight: student, teacher, adapters, term
and student-loss weight variables; every optimizer variable, iterations
included) and prints one JSON line: the global steps this process ran,
the kd weight each of them used, the epoch losses, the final kd weight and
optimizer iterations, and a checksum of the saved arrays.
"""

import argparse
import hashlib
import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import losses
from keras_kd.regimes import schedules  # noqa: E402

EPOCHS = 4
BATCH = 8
SAMPLES = 64


def teacher_model():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="teacher")


def student_model():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name="student")


class KillAtStep(keras.callbacks.Callback):
    """SIGKILLs this process once optimizer.iterations reaches `step`."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


class RecordWeights(keras.callbacks.Callback):
    """Records the kd weight each global step trains with (after the scheduler)."""

    def __init__(self, term):
        super().__init__()
        self.term = term
        self.seen = {}

    def on_train_batch_begin(self, batch, logs=None):
        self.seen[int(self.model.optimizer.iterations.numpy())] = self.term.weight


def checksum(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("--save-freq", default="epoch")
    parser.add_argument("--kill-at-step", type=int, default=None)
    args = parser.parse_args()
    save_freq = args.save_freq if args.save_freq == "epoch" else int(args.save_freq)

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()

    x, y = keras_kd.datasets.load("digits", "train", as_numpy=True)
    data = tf.data.Dataset.from_tensor_slices((x[:SAMPLES], y[:SAMPLES])).batch(BATCH)

    kd = losses.KD(temperature=4.0)
    hint = losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")
    distiller = keras_kd.Distiller(teacher_model(), student_model(), losses=[kd, hint],
                                   student_loss_weight=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss="sparse_categorical_crossentropy")

    record = RecordWeights(kd)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(args.workdir, "backup"),
                                         save_freq=save_freq),
        schedules.LossWeightScheduler({"kd": schedules.LinearWarmup(1.0, warmup_epochs=4)},
                                      per_step=True),
        record,
    ]
    if args.kill_at_step is not None:
        callbacks.append(KillAtStep(args.kill_at_step))
    history = distiller.fit(data, epochs=EPOCHS, verbose=0, callbacks=callbacks)

    weights = distiller.get_weights()
    optimizer = [v.numpy() for v in distiller.optimizer.variables]
    iterations = int(distiller.optimizer.iterations.numpy())
    np.savez(os.path.join(args.workdir, "final.npz"),
             **{f"weight_{i}": w for i, w in enumerate(weights)},
             **{f"optimizer_{i}": v for i, v in enumerate(optimizer)})
    print(json.dumps({
        "first_step": min(record.seen),
        "kd_weight_per_step": [record.seen[s] for s in sorted(record.seen)],
        "loss": [float(v) for v in history.history["loss"]],
        "iterations": iterations,
        "kd_weight": kd.weight,
        "checksum": checksum(weights + optimizer),
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
