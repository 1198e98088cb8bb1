"""Trained models shipped with keras-kd, found wherever keras-kd runs.

`find_trained("digits_teacher.keras")` looks, in order, at an explicit
`path`, at `./saved_models/<filename>` (a clone of the repository, or a
model you trained and saved there), and at the copy installed inside the
package (`keras_kd/data/`, found with `importlib.resources`, so it works
from a wheel in any folder). The package ships the teachers the README and
the demo use: `digits_teacher.keras` (the embedded digits, 99.16%) and
`fashion_mnist_teacher.keras` (Fashion-MNIST, 93.03%); the other models of
`saved_models/` live in the repository only.

    teacher = keras_kd.zoo.load_trained("digits_teacher.keras")
"""

import importlib.resources
import os
import pathlib

SAVED_MODELS = "saved_models"


def _packaged(filename):
    resource = importlib.resources.files("keras_kd").joinpath("data", filename)
    # A path on disk (a wheel or a checkout); a zipped install has none.
    if isinstance(resource, pathlib.Path) and resource.is_file():
        return str(resource)
    return None


def places(filename):
    """Where `find_trained` looks for `filename`, in order."""
    packaged = importlib.resources.files("keras_kd").joinpath("data", filename)
    return [os.path.join(os.getcwd(), SAVED_MODELS, filename), str(packaged)]


def find_trained(filename, path=None):
    """The path of a trained model: `path` when given (it must exist), else
    `./saved_models/<filename>`, else the copy shipped in the package; None
    when there is none."""
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        if not os.path.exists(path):
            raise FileNotFoundError(f"No model at '{path}'.")
        return path
    local = os.path.join(os.getcwd(), SAVED_MODELS, filename)
    if os.path.exists(local):
        return local
    return _packaged(filename)


def load_trained(filename="digits_teacher.keras", path=None):
    """`keras.saving.load_model` of `find_trained(filename, path)`; a
    FileNotFoundError names the places looked at when there is none."""
    import keras

    found = find_trained(filename, path)
    if found is None:
        looked = "".join(f"\n  - {p}" for p in places(filename))
        raise FileNotFoundError(
            f"No trained model '{filename}'. Looked at:{looked}\nTrain and save it there "
            "(see examples/), or pass path=.")
    return keras.saving.load_model(found)
