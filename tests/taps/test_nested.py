"""Nested backbones: taps by path ("resnet50/conv4_block6_out"), one pass.

keras.applications models are built with weights=None (no download) on a
32x32 input, each inside a Sequential or Functional classifier.
"""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd.taps.views import ModelView

SHAPE = (32, 32, 3)
CLASSES = 10
TEACHER_TAP = "resnet50/conv4_block6_out"
STUDENT_TAP = "MobileNetV3Small/expanded_conv_4_add"


def resnet50_teacher():
    backbone = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=SHAPE
    )
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            backbone,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES, name="logits"),
        ],
        name="teacher",
    )


def mobilenet_student():
    backbone = keras.applications.MobileNetV3Small(
        weights=None, include_top=False, input_shape=SHAPE,
        include_preprocessing=False,
    )
    inputs = keras.Input(SHAPE)
    x = backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x), name="student")


@pytest.fixture(scope="module")
def pair():
    keras.utils.set_random_seed(0)
    return resnet50_teacher(), mobilenet_student()


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, *SHAPE)).astype("float32")
    y = rng.integers(0, CLASSES, n).astype("int32")
    return x, y


class CallCounter:
    """Counts the calls of one layer (run eagerly, each step calls it)."""

    def __init__(self, layer):
        self.count = 0
        original = layer.call

        def counting_call(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)

        layer.call = counting_call
        self.layer, self.original = layer, original

    def restore(self):
        self.layer.call = self.original


def test_nested_taps_equal_the_backbone_tensors_and_the_model_output(pair):
    teacher, _ = pair
    view = ModelView(teacher, [TEACHER_TAP, TEACHER_TAP + ":input"], role="teacher")
    x, _ = data(4)
    out = view(x)
    np.testing.assert_allclose(out["logits"], teacher(x), rtol=1e-5, atol=1e-5)
    backbone = teacher.get_layer("resnet50")
    layer = backbone.get_layer("conv4_block6_out")
    reference = keras.Model(backbone.input, [layer.output, layer.input])(x)
    np.testing.assert_allclose(out[TEACHER_TAP], reference[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[TEACHER_TAP + ":input"], reference[1], rtol=1e-5, atol=1e-5)
    assert view.shapes[TEACHER_TAP] == (None, 2, 2, 1024)
    # the input of the ReLU named conv4_block6_out is the residual sum
    assert float(np.min(out[TEACHER_TAP + ":input"])) < 0.0 <= float(np.min(out[TEACHER_TAP]))


def test_resnet50_to_mobilenetv3small_kd_and_nested_feature_in_one_student_pass(pair):
    teacher, student = pair
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[
            keras_kd.losses.KD(temperature=4),
            keras_kd.losses.FeatureMSE(TEACHER_TAP, STUDENT_TAP, adapter="auto", weight=0.5),
        ],
        student_loss_weight=0.5,
    )
    nested_student = student.get_layer("MobileNetV3Small").get_layer("expanded_conv_4_add")
    nested_teacher = teacher.get_layer("resnet50").get_layer("conv4_block6_out")
    student_calls, teacher_calls = CallCounter(nested_student), CallCounter(nested_teacher)
    before = [w.numpy().copy() for w in student.get_layer("MobileNetV3Small").trainable_weights[:3]]
    try:
        distiller.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            run_eagerly=True,  # Python runs every step, so calls are counted per step
        )
        x, y = data(8)
        history = distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    finally:
        student_calls.restore()
        teacher_calls.restore()
    steps = 2
    assert student_calls.count == steps, "the student must run once per step"
    assert teacher_calls.count == steps, "the teacher must run once per step"
    assert np.isfinite(history.history["feature_mse"][-1])
    assert history.history["feature_mse"][-1] > 0
    after = student.get_layer("MobileNetV3Small").trainable_weights[:3]
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after)), (
        "the nested backbone's weights must train"
    )
    adapter = distiller.distillation_losses[1].adapter
    assert adapter is not None
    assert adapter.kernel.shape == (1, 1, 40, 1024)


@pytest.mark.slow  # XLA-compiling ResNet50 + MobileNetV3 takes minutes on CPU
def test_nested_taps_train_compiled_with_xla(pair):
    teacher, student = pair
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[keras_kd.losses.FeatureMSE(TEACHER_TAP, STUDENT_TAP, adapter="auto")],
    )
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    x, y = data(8, seed=1)
    first = distiller.evaluate(x, y, verbose=0, return_dict=True)
    history = distiller.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert history.history["feature_mse"][-1] > 0
    assert distiller.evaluate(x, y, verbose=0, return_dict=True)["loss"] != first["loss"]


def test_unknown_nested_path_lists_the_layers_at_that_level(pair):
    teacher, student = pair
    with pytest.raises(ValueError, match=r"nested model 'resnet50' has no layer named 'conv9'.*conv4_block6_out"):
        ModelView(teacher, ["resnet50/conv9"], role="teacher")
    with pytest.raises(ValueError, match=r"no layer named 'mobilenet'.*Nested models there: \['MobileNetV3Small'\]"):
        ModelView(student, ["mobilenet/expanded_conv_4_add"], role="student")
    with pytest.raises(ValueError, match=r"'logits' in the student 'student' is a Dense, not a nested"):
        ModelView(student, ["logits/kernel"], role="student")
    with pytest.raises(ValueError, match=r"Nested models \(tap inside one as 'model/layer'\): \['resnet50'\]"):
        ModelView(teacher, ["conv4_block6_out"], role="teacher")


def tiny_nested(depth_name="inner", softmax=False):
    """outer(Sequential) > block(Functional) > inner(Functional) > conv."""
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    y = keras.layers.ReLU(name="relu")(y)
    inner = keras.Model(x, y, name=depth_name)
    x = keras.Input((8, 8, 3))
    y = inner(x)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(5, activation="softmax" if softmax else None, name="head")(y)
    block = keras.Model(x, y, name="block")
    return keras.Sequential([keras.Input((8, 8, 3)), block], name="outer")


def test_two_levels_deep_path_and_one_pass():
    keras.utils.set_random_seed(1)
    model = tiny_nested()
    view = ModelView(model, ["block/inner/relu:input", "block/pool"], role="student")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    out = view(x)
    np.testing.assert_allclose(out["logits"], model(x), rtol=1e-6, atol=1e-6)
    inner = model.get_layer("block").get_layer("inner")
    conv = inner.get_layer("conv")
    np.testing.assert_allclose(out["block/inner/relu:input"], conv(x), rtol=1e-5, atol=1e-5)
    counter = CallCounter(conv)
    try:
        view(x, training=True)
    finally:
        counter.restore()
    assert counter.count == 1


def test_softmax_head_inside_a_nested_model_is_refused():
    keras.utils.set_random_seed(2)
    teacher = tiny_nested(softmax=True)
    student = tiny_nested()
    with pytest.raises(ValueError, match=r"'outer' ends in a softmax \(layer 'block/head'"):
        keras_kd.Distiller(teacher, student, losses=[keras_kd.losses.KD()])
    # feature-only distillation does not read the probabilities: accepted
    keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.FeatureMSE("block/pool", "block/pool")]
    )


def test_keras_applications_softmax_classifier_is_refused():
    keras.utils.set_random_seed(3)
    app = keras.applications.MobileNetV3Small(
        weights=None, input_shape=SHAPE, classes=CLASSES, include_preprocessing=False
    )
    teacher = keras.Sequential([keras.Input(SHAPE), app], name="app_teacher")
    student = mobilenet_student()
    with pytest.raises(ValueError, match=r"ends in a softmax \(layer 'MobileNetV3Small/predictions'"):
        keras_kd.Distiller(teacher, student, losses=[keras_kd.losses.KD()])


def test_keras_hub_backbone_nested_tap():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(4)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 64], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=SHAPE,
    )
    inputs = keras.Input(SHAPE)
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    teacher = keras.Model(inputs, keras.layers.Dense(CLASSES)(x), name="hub_teacher")
    student = mobilenet_student()
    tap = f"{backbone.name}/stack1_block0_out"
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[
            keras_kd.losses.KD(),
            keras_kd.losses.FeatureMSE(tap, "MobileNetV3Small/expanded_conv_2_add", adapter="auto"),
        ],
    )
    assert distiller.teacher_view.shapes[tap] == (None, 4, 4, 64)
    distiller.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False
    )
    x, y = data(4, seed=2)
    history = distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert history.history["feature_mse"][-1] > 0
