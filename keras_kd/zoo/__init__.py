"""Example models with named taps (`zoo/models.py`, `zoo/cifar.py`) and the
ready-made method recipes wired to their tap names (`zoo/recipes.py`).

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

__all__ = [
    "NAMES",
    "cnn",
    "digits_student",
    "digits_teacher",
    "fmnist_student",
    "fmnist_teacher",
    "get",
    "hinton_student",
    "hinton_teacher",
    "hinton_tiny",
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
