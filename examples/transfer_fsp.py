"""Transfer learning through FSP (Yim et al. 2017, §4.3), on the embedded digits.

A teacher trained on digits 0–4 teaches, through its flow (FSP) matrices
alone, a student that must learn digits 5–9: no logit term is possible (the
classes differ), yet the teacher's "how to solve a problem" transfers.

    python examples/transfer_fsp.py [--epochs 30 --fsp-epochs 10 --label-fraction 0.1 --seeds 1,2,3]

Compared, with the same seed, data and number of task epochs (and, for both,
BatchNormalization statistics re-estimated on the same labeled images at the
end, see `recalibrate_batchnorm`):
- scratch: the student trained on the 5–9 labels only;
- FSP: `--fsp-epochs` of FSP pre-training on the 5–9 images (no labels), then
  the same task training.
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


def subset(x, y, classes, fraction=1.0, seed=0):
    """Images of `classes`, labels re-indexed 0..len-1, a stratified fraction."""
    rng = np.random.default_rng(seed)
    keep = []
    for new, label in enumerate(classes):
        idx = np.flatnonzero(y == label)
        count = max(1, int(round(len(idx) * fraction)))
        keep.append(rng.choice(idx, size=count, replace=False))
    keep = np.sort(np.concatenate(keep))
    mapping = {label: new for new, label in enumerate(classes)}
    return x[keep], np.array([mapping[v] for v in y[keep]], dtype=np.int32)


def _student():
    return zoo.cnn((8, 8, 1), 5, widths=(32, 64, 128), convs_per_stage=1, pool_after=(2,), name="student_5_9")


def _compile(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train_teacher_0_4(epochs=20, seed=0):
    x, y = datasets.load("digits", "train", as_numpy=True)
    x, y = subset(x, y, range(5))
    keras.utils.set_random_seed(seed)
    teacher = zoo.cnn((8, 8, 1), 5, widths=(32, 64, 128), convs_per_stage=2, pool_after=(2,),
                      dropout=0.3, name="teacher_0_4")
    _compile(teacher).fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return teacher


def recalibrate_batchnorm(model, x, passes=300):
    """Re-estimates BatchNormalization moving statistics on `x` (no weight
    change). With ~70 labeled images a few hundred steps leave the moving
    averages far from the final weights' statistics, which would make the
    comparison about BN bookkeeping rather than learning; both students get
    the same treatment on the same labeled images."""
    for _ in range(passes):
        model(x, training=True)


def compare(teacher, epochs=30, fsp_epochs=10, label_fraction=0.1, seed=1, bn_passes=300):
    """Accuracies on the 5–9 test set of both students, and the FSP loss per
    pre-training epoch: `{"scratch": a, "fsp": b, "fsp_loss": [...]}`."""
    x_train, y_train = datasets.load("digits", "train", as_numpy=True)
    x_test, y_test = datasets.load("digits", "test", as_numpy=True)
    x_all, _ = subset(x_train, y_train, range(5, 10))
    x_lab, y_lab = subset(x_train, y_train, range(5, 10), label_fraction, seed)
    x_test, y_test = subset(x_test, y_test, range(5, 10))

    def accuracy(model):
        logits = keras.ops.convert_to_numpy(model(x_test, training=False))
        return float((logits.argmax(-1) == y_test).mean())

    keras.utils.set_random_seed(seed)
    scratch = _compile(_student())
    scratch.fit(x_lab, y_lab, batch_size=32, epochs=epochs, verbose=0)

    keras.utils.set_random_seed(seed)
    student = _student()
    fsp = keras_kd.Distiller(teacher, student, losses=[losses.FSP(pairs=PAIRS)])
    history = fsp.compile(optimizer=keras.optimizers.Adam(1e-3)).fit(
        x_all, batch_size=32, epochs=fsp_epochs, verbose=0)  # images only, no labels
    _compile(student).fit(x_lab, y_lab, batch_size=32, epochs=epochs, verbose=0)
    for model in (scratch, student):
        recalibrate_batchnorm(model, x_lab, bn_passes)
    return {"scratch": accuracy(scratch), "fsp": accuracy(student),
            "fsp_loss": history.history["fsp"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--fsp-epochs", type=int, default=10)
    parser.add_argument("--teacher-epochs", type=int, default=20)
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    teacher = train_teacher_0_4(args.teacher_epochs)
    results = [compare(teacher, args.epochs, args.fsp_epochs, args.label_fraction, int(s))
               for s in args.seeds.split(",")]
    for name in ("scratch", "fsp"):
        values = np.array([r[name] for r in results]) * 100
        print(f"{name:8s} digits 5-9 test accuracy: {values.mean():.2f} ± {values.std():.2f} % "
              f"(seeds {args.seeds}: {', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
