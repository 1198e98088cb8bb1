"""Example models with named taps (`zoo/models.py`, `zoo/cifar.py`), the
ready-made method recipes wired to their tap names (`zoo/recipes.py`), and
the trained models shipped with keras-kd (`zoo/trained.py`: `load_trained`).

Built on the library core; the core never imports the zoo.
"""

from keras_kd.zoo import recipes
from keras_kd.zoo.cifar import (
    overhaul_bn_layers,
    resnet,
    resnet8x4,
    resnet20,
    resnet32x4,
    resnet56,
    wrn,
    wrn_16_2,
    wrn_40_2,
)
from keras_kd.zoo.models import (
    NAMES,
    cnn,
    digits_student,
    digits_teacher,
    fmnist_student,
    fmnist_teacher,
    get,
    hinton_student,
    hinton_teacher,
    hinton_tiny,
    mlp,
)
from keras_kd.zoo.trained import find_trained, load_trained

__all__ = [
    "NAMES",
    "cnn",
    "digits_student",
    "digits_teacher",
    "find_trained",
    "fmnist_student",
    "fmnist_teacher",
    "get",
    "hinton_student",
    "hinton_teacher",
    "hinton_tiny",
    "load_trained",
    "mlp",
    "overhaul_bn_layers",
    "recipes",
    "resnet",
    "resnet20",
    "resnet32x4",
    "resnet56",
    "resnet8x4",
    "wrn",
    "wrn_16_2",
    "wrn_40_2",
]
