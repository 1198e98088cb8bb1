"""An ensemble of FSP students with shuffled targets (Yim et al. 2017, §4.2).

Each student is FSP-pre-trained towards the teacher's flow matrices with its
rows and columns permuted by a different seed (`FSP(shuffle_seed=k)`), which
decorrelates the students, then trained on the task; their ensemble (mean of
probabilities) is compared with an ensemble of as many scratch students.

    python examples/fsp_ensemble.py [--students 3 --epochs 20 --fsp-epochs 5]
"""

import argparse

import keras
import numpy as np

import keras_kd
from keras_kd import datasets, losses, zoo

PAIRS = [
    ("stage1_relu", "stage2_relu", "stage1_relu", "stage2_relu"),
    ("stage2_relu", "stage3_relu", "stage2_relu", "stage3_relu"),
]


def _student(index):
    return zoo.cnn((8, 8, 1), 10, widths=(32, 64, 128), convs_per_stage=1, pool_after=(2,),
                   name=f"student{index}")


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def probabilities(model, x):
    return keras.ops.convert_to_numpy(keras.ops.softmax(model(x, training=False), axis=-1))


def train_students(teacher, count=3, epochs=20, fsp_epochs=5, shuffle=True, seed=0):
    """`count` students; with a teacher, each FSP-pre-trained with its own
    shuffle seed (or the plain target when `shuffle` is False)."""
    x, y = datasets.load("digits", "train", as_numpy=True)
    students = []
    for k in range(count):
        keras.utils.set_random_seed(seed + k)
        student = _student(k)
        if teacher is not None:
            term = losses.FSP(pairs=PAIRS, shuffle_seed=(seed + k) if shuffle else None)
            keras_kd.Distiller(teacher, student, losses=[term]).compile(
                optimizer=keras.optimizers.Adam(1e-3)).fit(x, batch_size=32, epochs=fsp_epochs, verbose=0)
        student.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_loss())
        student.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
        students.append(student)
    return students


def evaluate(students):
    """Per-student accuracies and the accuracy of their mean probabilities."""
    x, y = datasets.load("digits", "test", as_numpy=True)
    probs = [probabilities(s, x) for s in students]
    single = [float((p.argmax(-1) == y).mean()) for p in probs]
    ensemble = float((np.mean(probs, axis=0).argmax(-1) == y).mean())
    return single, ensemble


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--fsp-epochs", type=int, default=5)
    parser.add_argument("--teacher", default="saved_models/digits_teacher.keras")
    args = parser.parse_args()
    teacher = keras.saving.load_model(args.teacher)
    for name, t in (("scratch", None), ("FSP, shuffled targets", teacher)):
        single, ensemble = evaluate(train_students(t, args.students, args.epochs, args.fsp_epochs))
        print(f"{name:22s} students: {', '.join(f'{a * 100:.2f}' for a in single)} %; "
              f"ensemble of {args.students}: {ensemble * 100:.2f} %")


if __name__ == "__main__":
    main()
