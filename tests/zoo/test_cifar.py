"""The CIFAR models of the zoo: RepDistiller's ResNets/WRNs (architecture,
parameter counts, tap names), their BN layers for Overhaul, and a recipe's
Distiller step on resnet8x4. The 28x28 and 8x8 models and zoo.get:
test_models.py."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses, zoo
from keras_kd.zoo import recipes as methods
from tests.helpers.models import trainable_count


# Independent counts, written from RepDistiller's models/resnet.py and
# models/wrn.py (conv weights k·k·in·out, no bias; BN 2·c; Linear in·out + out).
def conv(k, cin, cout):
    return k * k * cin * cout


def bn(c):
    return 2 * c


def expected_resnet(depth, filters, classes=100):
    n = (depth - 2) // 6
    total = conv(3, 3, filters[0]) + bn(filters[0])
    inplanes = filters[0]
    for planes, stride in zip(filters[1:], (1, 2, 2)):
        for block in range(n):
            s = stride if block == 0 else 1
            total += conv(3, inplanes, planes) + bn(planes) + conv(3, planes, planes) + bn(planes)
            if s != 1 or inplanes != planes:
                total += conv(1, inplanes, planes) + bn(planes)
            inplanes = planes
    return total + filters[3] * classes + classes


def expected_wrn(depth, k, classes=100):
    n = (depth - 4) // 6
    ch = [16, 16 * k, 32 * k, 64 * k]
    total = conv(3, 3, ch[0])
    inplanes = ch[0]
    for planes in ch[1:]:
        for _ in range(n):
            total += bn(inplanes) + conv(3, inplanes, planes) + bn(planes) + conv(3, planes, planes)
            if inplanes != planes:
                total += conv(1, inplanes, planes)
            inplanes = planes
    return total + bn(ch[3]) + ch[3] * classes + classes


# name, independent count, RepDistiller's published count (CRD paper tables;
# the README's "2.2M" for wrn_40_2 is 2.26M rounded down).
PUBLISHED = [
    ("resnet8x4", expected_resnet(8, [32, 64, 128, 256]), 1.23e6),
    ("resnet32x4", expected_resnet(32, [32, 64, 128, 256]), 7.43e6),
    ("wrn_40_2", expected_wrn(40, 2), 2.26e6),
    ("wrn_16_2", expected_wrn(16, 2), 0.70e6),
    ("resnet20", expected_resnet(20, [16, 16, 32, 64]), 0.28e6),
    ("resnet56", expected_resnet(56, [16, 16, 32, 64]), 0.86e6),
]


@pytest.mark.parametrize("name,expected,published", PUBLISHED)
def test_parameter_counts_match_repdistiller(name, expected, published):
    model = zoo.get(name)
    count = trainable_count(model)
    assert count == expected
    assert abs(count - published) / published < 0.02, (name, count)
    assert model.output_shape == (None, 100)
    assert model.input_shape == (None, 32, 32, 3)


def test_exact_counts_written_out():
    # The measured numbers quoted in the docstrings.
    assert [expected for _, expected, _ in PUBLISHED] == [
        1_233_540, 7_433_860, 2_255_156, 703_284, 278_324, 861_620]


@pytest.mark.parametrize("name,channels", [
    ("resnet8x4", (64, 128, 256)),
    ("resnet20", (16, 32, 64)),
    ("wrn_16_2", (32, 64, 128)),
])
def test_stage_taps_exist_with_cifar_shapes(name, channels):
    model = zoo.get(name)
    for i, (size, width) in enumerate(zip((32, 16, 8), channels), start=1):
        relu = model.get_layer(f"stage{i}_relu")
        assert isinstance(relu, keras.layers.ReLU)
        assert tuple(relu.output.shape) == (None, size, size, width)
        assert tuple(relu.input.shape) == (None, size, size, width)
    assert tuple(model.get_layer("pool").output.shape) == (None, channels[-1])
    assert model.get_layer("logits").units == 100
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))


def test_resnet_block_structure_and_names():
    model = zoo.get("resnet20")
    # Identity shortcut inside a stage, projection when the stride changes.
    assert "stage1_block1_shortcut_conv" not in [l.name for l in model.layers]
    proj = model.get_layer("stage2_block1_shortcut_conv")
    assert proj.kernel_size == (1, 1) and proj.strides == (2, 2)
    assert isinstance(model.get_layer("stage2_block1_add"), keras.layers.Add)
    # PyTorch padding=1 on the stride-2 conv: explicit symmetric padding.
    assert model.get_layer("stage2_block1_pad1").padding == ((1, 1), (1, 1))
    assert model.get_layer("stage3_relu").input.shape[1:] == (8, 8, 64)
    assert all(not l.use_bias for l in model.layers if isinstance(l, keras.layers.Conv2D))


def test_wrn_taps_are_the_bn_relus_of_get_bn_before_relu():
    model = zoo.get("wrn_16_2")
    # Stage 1/2 outputs feed the next stage's first block's BN-ReLU.
    conv = model.get_layer("stage2_block1_conv1")
    assert zoo.cifar._inbound_layers(model.get_layer("stage2_block1_pad1")) == [
        model.get_layer("stage1_relu")]
    assert conv.strides == (2, 2)
    for i in (1, 2, 3):
        (producer,) = zoo.cifar._inbound_layers(model.get_layer(f"stage{i}_relu"))
        assert producer.name == f"stage{i}_bn"
    (pool_in,) = zoo.cifar._inbound_layers(model.get_layer("pool"))
    assert pool_in.name == "stage3_relu"


def test_tiny_forward_pass():
    model = zoo.get("resnet8x4", num_classes=10)
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    logits = model(x, training=False)
    assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
    wide = zoo.get("wrn_16_2", input_shape=(16, 16, 3), num_classes=5)
    assert wide(x[:, :16, :16], training=True).shape == (2, 5)


@pytest.mark.parametrize("name,expected", [
    ("resnet8x4", ["stage1_block1_bn2", "stage2_block1_bn2", "stage3_block1_bn2"]),
    ("resnet20", ["stage1_block3_bn2", "stage2_block3_bn2", "stage3_block3_bn2"]),
    ("wrn_16_2", ["stage1_bn", "stage2_bn", "stage3_bn"]),
    ("fmnist_teacher", ["stage1_bn", "stage2_bn", "stage3_bn"]),
])
def test_overhaul_bn_layers(name, expected):
    assert zoo.overhaul_bn_layers(zoo.get(name)) == expected


def test_overhaul_bn_layers_errors():
    with pytest.raises(ValueError, match="no layer named 'stage1_relu'"):
        zoo.overhaul_bn_layers(zoo.get("hinton_tiny"))


@pytest.mark.parametrize("teacher_name,student_name", [
    ("resnet32x4", "resnet8x4"), ("wrn_16_2", "wrn_16_2")])
def test_overhaul_builds_with_overhaul_bn_layers(teacher_name, student_name):
    teacher, student = zoo.get(teacher_name), zoo.get(student_name)
    bns = zoo.overhaul_bn_layers(teacher)
    term = losses.Overhaul(list(methods.STAGES), list(methods.STAGES), bn_layers=bns)
    keras_kd.Distiller(teacher, student, losses=[term])
    assert term.built
    for variable, bn_name in zip(term.margin_variables, bns):
        layer = teacher.get_layer(bn_name)
        np.testing.assert_allclose(
            variable.numpy(),
            losses.overhaul_margin(layer.gamma.numpy(), layer.beta.numpy()))


def test_resnet_needs_bn_layers_for_overhaul():
    teacher = zoo.get("resnet8x4")
    with pytest.raises(ValueError, match="bn_layers"):
        keras_kd.Distiller(teacher, zoo.get("resnet8x4"),
                           losses=[losses.Overhaul(list(methods.STAGES), list(methods.STAGES))])


def test_one_distiller_step_of_a_recipe_on_resnet8x4():
    teacher = zoo.get("resnet8x4", num_classes=10)
    student = zoo.get("resnet8x4", num_classes=10, name="student")
    plan = methods.recipe("at", epochs=1)
    terms = plan.terms + [losses.KD(temperature=4.0)]
    distiller = keras_kd.Distiller(teacher, student, losses=terms,
                                   student_loss_weight=plan.student_loss_weight)
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((2, 32, 32, 3), dtype=np.float32)
    y = np.array([1, 7], dtype=np.int32)
    history = distiller.fit(x, y, batch_size=2, epochs=1, verbose=0).history
    assert all(np.isfinite(v[0]) for v in history.values()), history
    for term in terms:
        assert history[term.metric_name][0] > 0, (term.name, history)
