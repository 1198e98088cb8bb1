"""`keras-kd demo`: scratch student vs distilled student on the embedded data.

Offline by design: the data is the embedded `digits` set and the teacher is
`digits_teacher.keras` (trained by `examples/train_digits_teacher.py`), read
from ./saved_models/ or else the copy shipped in the package
(`keras_kd.zoo.find_trained`), so the demo runs from any folder; when the
teacher file cannot be found the demo trains one first and says so.
"""

import datetime
import os

import keras

from keras_kd import datasets, zoo
from keras_kd.distiller import Distiller
from keras_kd.losses import KD
from keras_kd.tools.timing import latencies_ms
from keras_kd.tools.progress import EpochProgressBar

TEACHER_FILE = "digits_teacher.keras"


def find_saved_model(filename):
    """`filename` in ./saved_models/, else the copy shipped in the package
    (`keras_kd.zoo.find_trained`), or None."""
    return zoo.find_trained(filename)


def find_teacher(path=None):
    """The demo's teacher: `path` (it must exist), ./saved_models/, else the
    copy shipped in the package."""
    if path is not None and not os.path.exists(path):
        raise FileNotFoundError(f"No teacher at '{path}'.")
    return zoo.find_trained(TEACHER_FILE, path)


def _fit_verbosity(verbose, metrics):
    """`fit`'s verbose and extra callbacks for the demo's `verbose`: 0 says
    nothing, 1 draws one bar per model over its epochs, 2 prints a line per
    epoch (Keras's verbose=2)."""
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0 (quiet), 1 (one bar per model) or 2 (a line per "
                         f"epoch), got {verbose!r}.")
    if verbose == 1:
        return 0, [EpochProgressBar(metrics)]
    return verbose, []


def train_teacher(x, y, epochs=30, seed=0, verbose=1):
    """Trains the digits teacher CNN exactly as the shipped one was trained."""
    keras.utils.set_random_seed(seed)
    teacher = zoo.digits_teacher()
    teacher.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    fit_verbose, bar = _fit_verbosity(verbose, ["loss", "accuracy"])
    teacher.fit(x, y, batch_size=64, epochs=epochs, verbose=fit_verbose, callbacks=bar)
    return teacher


def _accuracy(model, x, y):
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    return float((logits.argmax(-1) == y).mean())


def _student_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run(
    epochs=120,
    temperature=4.0,
    student_loss_weight=1.0,
    output_dir="kd_demo",
    teacher_path=None,
    seed=0,
    batch_size=32,
    verbose=1,
):
    """Runs the demo and returns its results as a dict (also printed).

    `verbose`: 0 prints the headings and the table only, 1 (default) also
    one progress bar per student over its epochs, 2 a line per epoch instead
    of the bar. Every epoch's losses and accuracy go to TensorBoard.
    """
    _fit_verbosity(verbose, [])  # a bad value fails before any work
    run_dir = os.path.join(
        output_dir, datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    )
    suffix = 1
    while os.path.exists(run_dir):  # never write into an earlier run
        suffix += 1
        run_dir = f"{run_dir.rsplit('~', 1)[0]}~{suffix}"
    os.makedirs(run_dir)
    x_train, y_train = datasets.load("digits", "train", as_numpy=True)
    x_test, y_test = datasets.load("digits", "test", as_numpy=True)
    print(f"Data: embedded 'digits', {len(y_train)} train / {len(y_test)} test images (8x8).")

    found = find_teacher(teacher_path)
    if found is None:
        print(f"No {TEACHER_FILE} found: training the teacher first (30 epochs).")
        teacher = train_teacher(x_train, y_train, verbose=verbose)
    else:
        print(f"Teacher: {found}")
        teacher = keras.saving.load_model(found)

    print(f"\n== Student from scratch ({epochs} epochs) ==")
    keras.utils.set_random_seed(seed)
    scratch = zoo.digits_student()
    scratch.compile(optimizer="adam", loss=_student_loss(), metrics=["accuracy"])
    fit_verbose, bar = _fit_verbosity(verbose, ["loss", "accuracy"])
    scratch.fit(
        x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=fit_verbose,
        callbacks=[keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard", "scratch")),
                   *bar],
    )

    print(f"\n== Same student distilled from the teacher (KD, T={temperature}) ==")
    keras.utils.set_random_seed(seed)
    student = zoo.digits_student()
    distiller = Distiller(
        teacher, student, losses=[KD(temperature=temperature)],
        student_loss_weight=student_loss_weight,
    )
    fit_verbose, bar = _fit_verbosity(verbose, ["loss", "student_loss", "kd", "accuracy"])
    distiller.compile(optimizer="adam", loss=_student_loss(), metrics=["accuracy"]).fit(
        x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=fit_verbose,
        callbacks=[keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard", "distilled")),
                   *bar],
    )
    saved_model = distiller.export_student(os.path.join(run_dir, "student_savedmodel"))
    keras_file = distiller.export_student(os.path.join(run_dir, "student.keras"))

    models = {"teacher": teacher, "scratch student": scratch, "distilled student": student}
    # All three warmed up before any is timed: none pays for going first.
    latency = latencies_ms(models, x_test[:256])
    results = {name: {"accuracy": _accuracy(model, x_test, y_test),
                      "params": model.count_params(), "latency_ms": latency[name]}
               for name, model in models.items()}
    print("\n" + format_table(results))
    print(f"\nTensorBoard logs:  tensorboard --logdir {os.path.join(run_dir, 'tensorboard')}")
    print(f"Distilled student: {saved_model} (SavedModel, serving_default) and {keras_file}")
    results["run_dir"] = run_dir
    return results


def format_table(results):
    lines = [
        "| model | test accuracy | parameters | latency per batch of 256 (ms) |",
        "|---|---|---|---|",
    ]
    for name, row in results.items():
        if not isinstance(row, dict):
            continue
        lines.append(
            f"| {name} | {row['accuracy'] * 100:.2f}% | {row['params']:,} | "
            f"{row['latency_ms']:.2f} |"
        )
    return "\n".join(lines)
