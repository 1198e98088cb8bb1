"""keras.distillation with its defaults against the same script migrated to
keras-kd with `keras_kd.losses.from_keras`, on the embedded digits.

Both arms are the same script: the shipped digits teacher
(saved_models/digits_teacher.keras), the zoo's 2.4k-parameter MLP student
from the same initial weights, the same batches, `compile(optimizer="adam",
loss="sparse_categorical_crossentropy", metrics=["accuracy"])` and `fit`.
The only line that changes is the Distiller:

    before: keras.distillation.Distiller(teacher, student, distillation_losses=losses)
    after:  keras_kd.Distiller(teacher, student, student_loss_weight=0.5,
                               losses=[keras_kd.losses.from_keras(l, weight=0.5) for l in losses])

with `losses = [keras.distillation.LogitsDistillation()]` (Keras's defaults:
temperature 3, loss "kl_divergence", student_loss_weight 0.5). Two more
keras.distillation arms show which default does what: the student loss
given as `SparseCategoricalCrossentropy(from_logits=True)` instead of the
string, and the distillation loss as `keras.losses.KLDivergence()` instead
of the default string. The student is scored on the digits test split (359
images). Run from the repository root:

    python docs/migration/digits.py --out docs/migration/digits.json
"""

import argparse
import json
import platform
import time
import warnings

import keras
import numpy as np

import keras_kd

TEACHER = "saved_models/digits_teacher.keras"
KERAS = "keras.distillation"
KERAS_LOGITS_CE = "keras.distillation, student loss from_logits=True"
KERAS_KL_INSTANCE = "keras.distillation, loss=KLDivergence()"
KERAS_KD = "keras_kd + from_keras"
ARMS = (KERAS, KERAS_LOGITS_CE, KERAS_KL_INSTANCE, KERAS_KD)


def accuracy(model, x, y):
    """Test accuracy, argmax of the student's outputs."""
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


def run(arm, seed, epochs, batch_size):
    keras.utils.set_random_seed(seed)
    teacher = keras.saving.load_model(TEACHER)
    student = keras_kd.zoo.digits_student()
    train = keras_kd.datasets.load("digits", "train", batch_size=batch_size,
                                   shuffle=True, seed=seed)
    losses = [keras.distillation.LogitsDistillation()]
    student_loss = "sparse_categorical_crossentropy"
    if arm == KERAS_LOGITS_CE:
        student_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if arm == KERAS_KL_INSTANCE:
        losses = [keras.distillation.LogitsDistillation(loss=keras.losses.KLDivergence())]
    if arm != KERAS_KD:
        distiller = keras.distillation.Distiller(
            teacher=teacher, student=student, distillation_losses=losses)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # from_keras says what it fixes
            terms = [keras_kd.losses.from_keras(loss, weight=0.5) for loss in losses]
        distiller = keras_kd.Distiller(teacher, student, losses=terms,
                                       student_loss_weight=0.5)
    distiller.compile(optimizer="adam", loss=student_loss, metrics=["accuracy"])
    distiller.fit(train, epochs=epochs, verbose=0)
    x_test, y_test = keras_kd.datasets.load("digits", "test", as_numpy=True)
    return accuracy(student, x_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default="docs/migration/digits.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.time()
    results = {}
    for arm in ARMS:
        results[arm] = [run(arm, seed, args.epochs, args.batch_size) for seed in seeds]
        print(arm, results[arm], flush=True)
    x_test, y_test = keras_kd.datasets.load("digits", "test", as_numpy=True)
    report = {
        "settings": {"dataset": "digits", "teacher": TEACHER, "student": "digits_student",
                     "epochs": args.epochs, "batch_size": args.batch_size, "seeds": seeds,
                     "optimizer": "adam", "loss": "sparse_categorical_crossentropy",
                     "distillation_losses": "[keras.distillation.LogitsDistillation()]",
                     "test_images": int(len(y_test))},
        "teacher_accuracy": accuracy(keras.saving.load_model(TEACHER), x_test, y_test),
        "accuracy": results,
        "environment": {"python": platform.python_version(), "keras": keras.__version__,
                        "backend": keras.backend.backend()},
        "seconds": round(time.time() - start, 1),
    }
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
