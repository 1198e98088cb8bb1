"""Semi-supervised distillation on the embedded digits: 10% labels + a teacher.

The student sees the labels of 10% of the training images; the other 90%
come unlabeled (label -1): they get no student loss, but the teacher's soft
targets (KD) cover them. Compared with the same student trained on the same
10% alone (same seed, epochs and steps).

Two teachers, reported separately:
- `shipped`: saved_models/digits_teacher.keras (trained on all training
  labels: a big model exists, labels for the student's data are scarce);
- `labeled-only`: the same teacher architecture trained on the 10% only
  (the classic regime where the teacher labels the unlabeled data).

    python examples/semi_supervised.py [--fraction 0.1 --epochs 60 --seeds 1,2,3]
"""

import argparse

import keras
import numpy as np

import keras_kd
from keras_kd import datasets, zoo
from keras_kd.tools.demo import train_teacher


def split(fraction, seed):
    x, y = datasets.load("digits", "train", as_numpy=True)
    rng = np.random.default_rng(seed)
    labeled = np.zeros(len(y), bool)
    for label in range(10):
        members = np.flatnonzero(y == label)
        labeled[rng.choice(members, max(1, int(round(len(members) * fraction))), replace=False)] = True
    return (x[labeled], y[labeled]), x[~labeled]


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy(model):
    x, y = datasets.load("digits", "test", as_numpy=True)
    return float((keras.ops.convert_to_numpy(model(x, training=False)).argmax(-1) == y).mean())


def run(teacher, fraction=0.1, epochs=60, seed=1, temperature=4.0):
    """`{"labels only": acc, "labels + teacher": acc}` for one seed."""
    (x_lab, y_lab), x_unlab = split(fraction, seed)
    steps = int(np.ceil((len(y_lab) + len(x_unlab)) / 32))

    keras.utils.set_random_seed(seed)
    alone = zoo.digits_student()
    alone.compile(optimizer="adam", loss=_loss())
    labeled = keras_kd.datasets.semi_supervised((x_lab, y_lab), x_lab[:0], batch_size=32, seed=seed)
    alone.fit(labeled.repeat(), epochs=epochs, steps_per_epoch=steps, verbose=0)

    keras.utils.set_random_seed(seed)
    student = zoo.digits_student()
    mixed = keras_kd.datasets.semi_supervised((x_lab, y_lab), x_unlab, batch_size=32, seed=seed)
    distiller = keras_kd.Distiller(teacher, student, losses=[keras_kd.losses.KD(temperature=temperature)])
    distiller.compile(optimizer="adam", loss=_loss()).fit(mixed, epochs=epochs, verbose=0)
    return {"labels only": accuracy(alone), "labels + teacher": accuracy(student)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--teacher", default="saved_models/digits_teacher.keras")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    shipped = keras.saving.load_model(args.teacher)
    for name in ("shipped", "labeled-only"):
        rows = []
        for seed in seeds:
            if name == "shipped":
                teacher = shipped
            else:
                (x_lab, y_lab), _ = split(args.fraction, seed)
                teacher = train_teacher(x_lab, y_lab, epochs=60, seed=seed, verbose=0)
            rows.append(run(teacher, args.fraction, args.epochs, seed))
        for key in ("labels only", "labels + teacher"):
            values = np.array([r[key] for r in rows]) * 100
            print(f"teacher {name:12s} | {key:16s}: {values.mean():.2f} ± {values.std():.2f} % "
                  f"(seeds {seeds}: {', '.join(f'{v:.2f}' for v in values)})", flush=True)


if __name__ == "__main__":
    main()
