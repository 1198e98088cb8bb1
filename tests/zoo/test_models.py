"""The zoo's small models (digits 8x8, Fashion-MNIST and Hinton 28x28) and
zoo.get: defaults, sizes, overrides and errors."""

import keras
import pytest

from keras_kd import zoo
from keras_kd.zoo import recipes as methods
from tests.helpers.models import trainable_count


@pytest.mark.parametrize("name,shape,classes,stages", [
    ("digits_teacher", (8, 8, 1), 10, True),
    ("digits_student", (8, 8, 1), 10, False),
    ("fmnist_teacher", (28, 28, 1), 10, True),
    ("fmnist_student", (28, 28, 1), 10, True),
    ("hinton_teacher", (28, 28, 1), 10, False),
    ("hinton_student", (28, 28, 1), 10, False),
    ("hinton_tiny", (28, 28, 1), 10, False),
])
def test_small_models_defaults(name, shape, classes, stages):
    model = zoo.get(name)
    assert model.input_shape == (None, *shape) and model.output_shape == (None, classes)
    assert model.get_layer("logits") is model.layers[-1]
    if stages:
        for s in methods.STAGES:
            assert isinstance(model.get_layer(s), keras.layers.ReLU)


def test_fmnist_and_hinton_sizes():
    teacher = trainable_count(zoo.get("fmnist_teacher"))
    student = trainable_count(zoo.get("fmnist_student"))
    # conv 3×3 (no bias) + BN gamma/beta per block, then the 10-way head.
    def stage(c_in, c, blocks):
        return 9 * c_in * c + (blocks - 1) * 9 * c * c + blocks * 2 * c

    head = 64 * 10 + 10
    assert teacher == stage(1, 16, 3) + stage(16, 32, 3) + stage(32, 64, 3) + head == 121_274
    assert student == stage(1, 16, 1) + stage(16, 32, 1) + stage(32, 64, 1) + head == 24_058
    assert 4 <= teacher / student <= 8
    assert trainable_count(zoo.get("hinton_teacher")) == 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 12010
    assert trainable_count(zoo.get("hinton_student")) == 784 * 800 + 800 + 800 * 800 + 800 + 8010
    assert trainable_count(zoo.get("hinton_tiny")) == 784 * 30 + 30 + 30 * 30 + 30 + 310
    dropouts = [l.rate for l in zoo.get("hinton_teacher").layers if isinstance(l, keras.layers.Dropout)]
    assert dropouts == [0.5, 0.5]


def test_get_overrides_and_errors():
    model = zoo.get("fmnist_student", input_shape=(8, 8, 1), num_classes=3, name="s")
    assert model.input_shape == (None, 8, 8, 1) and model.output_shape == (None, 3)
    assert model.name == "s"
    assert zoo.get("resnet8x4") is not zoo.get("resnet8x4")
    assert set(zoo.NAMES) >= {
        "digits_teacher", "digits_student", "resnet8x4", "resnet32x4", "wrn_40_2",
        "wrn_16_2", "fmnist_teacher", "fmnist_student", "hinton_teacher",
        "hinton_student", "hinton_tiny"}
    with pytest.raises(ValueError, match="'resnet9'.*resnet8x4.*hinton_tiny"):
        zoo.get("resnet9")
    with pytest.raises(ValueError, match="6n \\+ 2.*got 9"):
        zoo.resnet(9, (16, 16, 32, 64))
    with pytest.raises(ValueError, match="4 widths"):
        zoo.resnet(8, (16, 32, 64))
    with pytest.raises(ValueError, match="6n \\+ 4.*got 12"):
        zoo.wrn(12, 2)
    with pytest.raises(ValueError, match="widen_factor.*0"):
        zoo.wrn(16, 0)
