"""The snippets of the README and the getting-started guide, run as a user
runs them: from an empty folder (the shipped teachers come from the
package, `keras_kd.zoo.load_trained`), twice in a row (the second run
replaces the first one's exports: `overwrite=True` replaces an earlier
export only), reporting the student's test accuracy from
`distiller.evaluate`, which is checked against the exported student's
accuracy computed here.

`SNIPPET` (digits, offline) is the guide's "Distil a student" with its
export; `README_SNIPPET` is the README's Fashion-MNIST DIST snippet, run on
the embedded digits for one epoch (`SMOKE`, as tests/docs/test_readme.py
does). Both are given, verbatim, to the README and guide's owner."""

import os
import re
import subprocess
import sys

import keras
import pytest

from tests.helpers.paths import ROOT
from tests.helpers.processes import subprocess_timeout

SNIPPET = '''\
import keras
import keras_kd

teacher = keras_kd.zoo.load_trained("digits_teacher.keras")  # the shipped CNN, from any folder
student = keras_kd.zoo.digits_student()          # or any Keras model with a logits head
train_ds = keras_kd.datasets.load("digits", "train", batch_size=32, shuffle=True)
test_ds = keras_kd.datasets.load("digits", "test", batch_size=256)

distiller = keras_kd.Distiller(
    teacher, student,
    losses=[keras_kd.losses.KD(temperature=4)],
    student_loss_weight=0.1,
)
distiller.compile(
    optimizer="adam",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
).fit(train_ds, epochs=10, callbacks=[keras.callbacks.TensorBoard("runs/kd")])

scores = distiller.evaluate(test_ds, return_dict=True)   # the student alone, on the test split
print(f"student test accuracy: {scores['accuracy']:.4f}")

# overwrite=True replaces an earlier export only (never a file or folder of yours)
distiller.export_student("runs/kd/student", overwrite=True)        # SavedModel, serving_default
distiller.export_student("runs/kd/student.keras", overwrite=True)  # Keras archive
'''

README_SNIPPET = '''\
import keras
import keras_kd
from keras_kd.zoo.recipes import recipe

teacher = keras_kd.zoo.load_trained("fashion_mnist_teacher.keras")   # shipped with the package
student = keras_kd.zoo.fmnist_student()
train = keras_kd.datasets.load("fashion_mnist", "train", batch_size=64, shuffle=True)
test = keras_kd.datasets.load("fashion_mnist", "test", batch_size=256)

plan = recipe("dist", 15, teacher=teacher, student=student)   # DIST at its authors' setting
distiller = keras_kd.Distiller(teacher, student, losses=plan.terms,
                               student_loss_weight=plan.student_loss_weight)
schedule = keras.optimizers.schedules.CosineDecay(1e-3, plan.epochs * len(train))
distiller.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
distiller.fit(train, epochs=plan.epochs, callbacks=plan.callbacks)
print(distiller.evaluate(test, return_dict=True)["accuracy"])   # the student, on the test split
distiller.export_student("fmnist_student.keras", overwrite=True)  # replaces an earlier export only
'''
# README_SNIPPET on the embedded digits for one epoch: each replacement must
# find its text.
SMOKE = (
    ('"fashion_mnist"', '"digits"'),
    ('"fashion_mnist_teacher.keras"', '"digits_teacher.keras"'),
    ("keras_kd.zoo.fmnist_student()", "keras_kd.zoo.digits_student()"),
    ('recipe("dist", 15,', 'recipe("dist", 1,'),
)


def _run(code, folder):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)  # the README's default: TensorFlow
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=subprocess_timeout())
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _run_snippet(folder):
    out = _run(SNIPPET, folder)
    (accuracy,) = re.findall(r"^student test accuracy: (\d\.\d{4})$", out, re.M)
    return float(accuracy)


def _exported_accuracy(path):
    """The exported student's accuracy on the digits test split, computed here."""
    from keras_kd import datasets

    x, y = datasets.load("digits", "test", as_numpy=True)
    student = keras.saving.load_model(str(path))
    return float((student.predict(x, verbose=0).argmax(-1) == y).mean())


@pytest.mark.slow
def test_the_snippet_runs_twice_from_an_empty_folder_and_reports_the_test_accuracy(tmp_path):
    assert os.listdir(tmp_path) == []  # no saved_models/ here: the packaged teacher is used
    archive_path = tmp_path / "runs" / "kd" / "student.keras"
    first = _run_snippet(tmp_path)
    assert first == pytest.approx(_exported_accuracy(archive_path), abs=5.1e-5)
    assert first > 0.5  # 359 test images of 10 classes: the student learned
    archive = archive_path.read_bytes()

    second = _run_snippet(tmp_path)  # the exports exist now: replaced, not refused
    assert second == pytest.approx(_exported_accuracy(archive_path), abs=5.1e-5)
    assert archive_path.read_bytes() != archive
    assert "saved_model.pb" in os.listdir(tmp_path / "runs" / "kd" / "student")
    leftovers = [n for n in os.listdir(tmp_path / "runs" / "kd") if n.startswith(".")]
    assert leftovers == []  # no partial export beside them


@pytest.mark.slow
def test_the_readme_snippet_replaces_an_earlier_export_from_an_empty_folder(tmp_path):
    from keras_kd import zoo
    from keras_kd.export import export_model

    code = README_SNIPPET
    for old, new in SMOKE:
        assert old in code, old
        code = code.replace(old, new)
    # What a first run left (an export at the same path), made here to spare
    # the suite one more run; SNIPPET's test above runs twice for real.
    earlier = export_model(zoo.digits_student(), str(tmp_path / "fmnist_student.keras"))
    before = open(earlier, "rb").read()
    printed = float(_run(code, tmp_path).strip().splitlines()[-1])
    assert open(earlier, "rb").read() != before
    assert printed == pytest.approx(_exported_accuracy(earlier), abs=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["fmnist_student.keras"]


@pytest.mark.parametrize("snippet, exports", [(SNIPPET, 2), (README_SNIPPET, 1)])
def test_the_snippets_use_no_file_of_the_repository(snippet, exports):
    # From an empty folder nothing of a clone is there: only the package.
    assert "saved_models/" not in snippet and "recipes/" not in snippet
    assert snippet.count(", overwrite=True)") == snippet.count("export_student(") == exports
