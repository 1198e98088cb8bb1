"""The CIFAR models of RepDistiller (Tian et al. 2020,
github.com/HobbitLong/RepDistiller): `resnet` (`resnet8x4`, `resnet32x4`,
`resnet20`, `resnet56`) and `wrn` (`wrn_40_2`, `wrn_16_2`), same architecture
and parameter count, with `stage{i}_relu` taps; `overhaul_bn_layers(model)`
names the teacher BNs to pass to `losses.Overhaul(..., bn_layers=...)`."""

import keras
from keras import layers

from keras_kd.checks.numbers import is_integer

# ---------------------------------------------------------------------------
# CIFAR models of RepDistiller (Tian et al. 2020, "Contrastive Representation
# Distillation", github.com/HobbitLong/RepDistiller, models/resnet.py and
# models/wrn.py), layer for layer.
#
# Port notes, so weights could be copied from the PyTorch checkpoints:
# - convolutions have no bias and the He-normal fan-out initializer of
#   `nn.init.kaiming_normal_(mode="fan_out", nonlinearity="relu")`;
# - BatchNormalization uses PyTorch's defaults (momentum 0.1 -> Keras 0.9,
#   epsilon 1e-5);
# - a stride-2 3×3 convolution pads one pixel on every side as PyTorch's
#   `padding=1` does (a `ZeroPadding2D` + "valid" convolution, named
#   `..._pad1`): Keras's "same" would pad only bottom/right for even inputs
#   and sample different pixels;
# - the classifier is initialized like PyTorch's `nn.Linear` (uniform
#   ±1/sqrt(fan_in)); WRN zeroes its bias as the WRN code does.
# The global average pool replaces `AvgPool2d(8)` (equal on 32×32 inputs,
# and it also accepts other sizes).
# ---------------------------------------------------------------------------

_CONV_INIT = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def _bn(name):
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _conv(x, filters, kernel, stride, name, pad_name=None):
    """A bias-free conv with PyTorch padding (kernel // 2 on every side)."""
    if kernel == 3 and stride != 1:
        x = layers.ZeroPadding2D(1, name=pad_name or f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"  # stride 1 (3×3 or 1×1), or 1×1 stride 2: no padding
    return layers.Conv2D(
        filters, kernel, strides=stride, padding=padding, use_bias=False,
        kernel_initializer=_CONV_INIT, name=name,
    )(x)


def _torch_linear(x, num_classes, zero_bias=False):
    fan_in = int(x.shape[-1])
    bound = 1.0 / fan_in ** 0.5
    return layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_initializer="zeros" if zero_bias
        else keras.initializers.RandomUniform(-bound, bound),
        name="logits",
    )(x)


def _check_int(value, what, minimum=1):
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}.")


def resnet(depth, num_filters, num_classes=100, input_shape=(32, 32, 3), name=None):
    """The CIFAR ResNet of RepDistiller (`models/resnet.py`, BasicBlock).

    Stem: 3×3 conv (`num_filters[0]`) -> BN -> ReLU; then 3 stages of
    n = (depth − 2) / 6 BasicBlocks with `num_filters[1..3]` channels and
    strides 1, 2, 2; global average pool; a dense classifier. A BasicBlock is
    conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut (identity, or 1×1 conv + BN
    when the stride or width changes), added, then ReLU. This is the He et
    al. 2016 CIFAR ResNet; `resnet8x4`/`resnet32x4` are RepDistiller's
    4×-wide variants.

    Layer names: `stem_conv/_bn/_relu`; block j of stage i has
    `stage{i}_block{j}_conv1/_bn1/_relu1/_conv2/_bn2`, `_shortcut_conv/_bn`
    (when present), `_add` and `_relu` — except that the last block's final
    ReLU is `stage{i}_relu`: the stage output (32×32, 16×16, 8×8 on CIFAR),
    whose pre-activation (the residual sum) is `stage{i}_relu:input`. Then
    `pool` (global average) and `logits`. That ReLU is fed by the Add, so
    `Overhaul` needs `bn_layers=overhaul_bn_layers(model)`.

    Args:
        depth: 6n + 2 (8, 20, 32, 56, 110, ...).
        num_filters: 4 widths: the stem and the three stages.
        num_classes: logits width.
        input_shape: NHWC input without the batch dim.
        name: the model name (default `resnet{depth}`).
    """
    _check_int(depth, "resnet depth", 8)
    if (depth - 2) % 6:
        raise ValueError(
            f"resnet depth must be 6n + 2 (8, 14, 20, 32, 56, 110, ...), got {depth}."
        )
    num_filters = tuple(num_filters)
    if len(num_filters) != 4:
        raise ValueError(
            "resnet num_filters must give 4 widths (stem, stage 1, 2, 3), got "
            f"{num_filters!r}."
        )
    for width in num_filters:
        _check_int(width, "each resnet width")
    n = (depth - 2) // 6
    inputs = keras.Input(input_shape, name="image")
    x = _conv(inputs, num_filters[0], 3, 1, "stem_conv")
    x = _bn("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    in_planes = num_filters[0]
    for stage, (planes, stride) in enumerate(zip(num_filters[1:], (1, 2, 2)), start=1):
        for block in range(1, n + 1):
            s = stride if block == 1 else 1
            p = f"stage{stage}_block{block}"
            shortcut = x
            y = _conv(x, planes, 3, s, f"{p}_conv1", f"{p}_pad1")
            y = _bn(f"{p}_bn1")(y)
            y = layers.ReLU(name=f"{p}_relu1")(y)
            y = _conv(y, planes, 3, 1, f"{p}_conv2")
            y = _bn(f"{p}_bn2")(y)
            if s != 1 or in_planes != planes:
                shortcut = _conv(x, planes, 1, s, f"{p}_shortcut_conv")
                shortcut = _bn(f"{p}_shortcut_bn")(shortcut)
            x = layers.Add(name=f"{p}_add")([y, shortcut])
            x = layers.ReLU(name=f"stage{stage}_relu" if block == n else f"{p}_relu")(x)
            in_planes = planes
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = _torch_linear(x, num_classes)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")


def resnet8x4(input_shape=(32, 32, 3), num_classes=100, name="resnet8x4"):
    """RepDistiller's `resnet8x4`: depth 8, widths [32, 64, 128, 256].

    1,233,540 trainable parameters for 100 classes (RepDistiller: 1.23M);
    stage outputs 32×32×64, 16×16×128, 8×8×256. The usual CIFAR-100 student
    of `resnet32x4`.
    """
    return resnet(8, (32, 64, 128, 256), num_classes, input_shape, name)


def resnet32x4(input_shape=(32, 32, 3), num_classes=100, name="resnet32x4"):
    """RepDistiller's `resnet32x4`: depth 32, widths [32, 64, 128, 256].

    7,433,860 trainable parameters for 100 classes (RepDistiller: 7.43M);
    the usual CIFAR-100 teacher of `resnet8x4`.
    """
    return resnet(32, (32, 64, 128, 256), num_classes, input_shape, name)


def resnet20(input_shape=(32, 32, 3), num_classes=100, name="resnet20"):
    """RepDistiller's `resnet20`: depth 20, widths [16, 16, 32, 64].

    278,324 trainable parameters for 100 classes (RepDistiller: 0.28M).
    """
    return resnet(20, (16, 16, 32, 64), num_classes, input_shape, name)


def resnet56(input_shape=(32, 32, 3), num_classes=100, name="resnet56"):
    """RepDistiller's `resnet56`: depth 56, widths [16, 16, 32, 64].

    861,620 trainable parameters for 100 classes (RepDistiller: 0.86M).
    """
    return resnet(56, (16, 16, 32, 64), num_classes, input_shape, name)


def wrn(depth, widen_factor, num_classes=100, input_shape=(32, 32, 3), dropout=0.0, name=None):
    """The pre-activation Wide ResNet of RepDistiller (`models/wrn.py`).

    Zagoruyko & Komodakis 2016, WRN-depth-k: a 3×3 stem conv (16 channels,
    no BN), three stages of n = (depth − 4) / 6 pre-activation blocks with
    16k, 32k, 64k channels and strides 1, 2, 2, a final BN + ReLU, global
    average pool and a dense classifier. A block is BN-ReLU-conv3×3-BN-ReLU-
    (dropout)-conv3×3 plus the shortcut: the block input when the width is
    unchanged, else a 1×1 (strided) conv of the *activated* input, as the
    RepDistiller code does.

    Layer names: `stem_conv`; block j of stage i has
    `stage{i}_block{j}_bn1/_relu1/_conv1/_bn2/_relu2/_conv2`,
    `_shortcut_conv` (when present) and `_add`. A pre-activation net has no
    ReLU at the end of a stage, so the stage-i tap is the next BN + ReLU,
    named **`stage{i}_bn` / `stage{i}_relu`**: for stages 1 and 2 the first
    BN-ReLU of block 1 of the next stage (RepDistiller's
    `block{i+1}.layer[0].bn1`), for stage 3 the final BN + ReLU (`bn1`).
    These are exactly the BNs of RepDistiller's/OFD's `get_bn_before_relu`,
    so `stage{i}_relu:input` is RepDistiller's `preact` feature and Overhaul
    finds the BN by itself (`overhaul_bn_layers` names them too). Spatial
    sizes of the taps: 32, 16, 8. Then `pool` and `logits`.

    Args:
        depth: 6n + 4 (10, 16, 22, 28, 40, ...).
        widen_factor: k, the width multiplier.
        num_classes: logits width.
        input_shape: NHWC input without the batch dim.
        dropout: dropout rate inside each block (RepDistiller: 0).
        name: the model name (default `wrn_{depth}_{widen_factor}`).
    """
    _check_int(depth, "wrn depth", 10)
    if (depth - 4) % 6:
        raise ValueError(f"wrn depth must be 6n + 4 (10, 16, 22, 28, 40, ...), got {depth}.")
    _check_int(widen_factor, "wrn widen_factor")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"wrn dropout must be in [0, 1), got {dropout!r}.")
    n = (depth - 4) // 6
    widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
    inputs = keras.Input(input_shape, name="image")
    x = _conv(inputs, widths[0], 3, 1, "stem_conv")
    in_planes = widths[0]
    for stage, (planes, stride) in enumerate(zip(widths[1:], (1, 2, 2)), start=1):
        for block in range(1, n + 1):
            s = stride if block == 1 else 1
            p = f"stage{stage}_block{block}"
            if stage > 1 and block == 1:  # the previous stage's output tap
                bn_name, relu_name = f"stage{stage - 1}_bn", f"stage{stage - 1}_relu"
            else:
                bn_name, relu_name = f"{p}_bn1", f"{p}_relu1"
            activated = layers.ReLU(name=relu_name)(_bn(bn_name)(x))
            y = _conv(activated, planes, 3, s, f"{p}_conv1", f"{p}_pad1")
            y = _bn(f"{p}_bn2")(y)
            y = layers.ReLU(name=f"{p}_relu2")(y)
            if dropout:
                y = layers.Dropout(dropout, name=f"{p}_dropout")(y)
            y = _conv(y, planes, 3, 1, f"{p}_conv2")
            if in_planes == planes:
                shortcut = x
            else:
                shortcut = _conv(activated, planes, 1, s, f"{p}_shortcut_conv")
            x = layers.Add(name=f"{p}_add")([y, shortcut])
            in_planes = planes
    x = layers.ReLU(name="stage3_relu")(_bn("stage3_bn")(x))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = _torch_linear(x, num_classes, zero_bias=True)
    return keras.Model(inputs, outputs, name=name or f"wrn_{depth}_{widen_factor}")


def wrn_40_2(input_shape=(32, 32, 3), num_classes=100, name="wrn_40_2"):
    """RepDistiller's `wrn_40_2` (WRN-40-2): 2,255,156 trainable parameters
    for 100 classes (RepDistiller/CRD tables: 2.26M). A CIFAR-100 teacher."""
    return wrn(40, 2, num_classes, input_shape, name=name)


def wrn_16_2(input_shape=(32, 32, 3), num_classes=100, name="wrn_16_2"):
    """RepDistiller's `wrn_16_2` (WRN-16-2): 703,284 trainable parameters for
    100 classes (RepDistiller: 0.70M). The usual student of `wrn_40_2`."""
    return wrn(16, 2, num_classes, input_shape, name=name)


def _inbound_layers(layer):
    """The layers whose outputs feed `layer` (Functional graph)."""
    inputs = layer.input
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    found = []
    for tensor in inputs:
        history = getattr(tensor, "_keras_history", None)
        if history is not None:
            found.append(history.operation)
    return found


def overhaul_bn_layers(model, stages=("stage1_relu", "stage2_relu", "stage3_relu")):
    """The teacher BatchNormalization layer of each stage, for `Overhaul`.

    Use as `losses.Overhaul(STAGES, STAGES, bn_layers=overhaul_bn_layers(teacher))`.
    The margin of Heo et al. 2019 comes from the BN that produces the
    pre-ReLU feature. For each ReLU in `stages`:

    - fed by a BatchNormalization (the `cnn`s, `wrn`): that BN (for WRN:
      `stage{i}_bn`, the BNs of OFD's `get_bn_before_relu` —
      `block2.layer[0].bn1`, `block3.layer[0].bn1` and the final `bn1`);
    - fed by a residual Add (`resnet`): the residual branch's last BN, the
      last block's `bn2` (`stage{i}_block{n}_bn2`), as OFD/RepDistiller's
      `ResNet.get_bn_before_relu` does. The shortcut BN is ignored.

    Raises a ValueError naming the layer when a stage has no such BN.
    """
    names = []
    for stage in stages:
        try:
            relu = model.get_layer(stage)
        except ValueError:
            raise ValueError(
                f"overhaul_bn_layers: model '{model.name}' has no layer named "
                f"'{stage}'."
            ) from None
        producers = _inbound_layers(relu)
        bn = None
        if len(producers) == 1 and isinstance(producers[0], layers.BatchNormalization):
            bn = producers[0]
        elif len(producers) == 1 and isinstance(producers[0], layers.Add):
            candidates = [
                layer for layer in _inbound_layers(producers[0])
                if isinstance(layer, layers.BatchNormalization)
                and "shortcut" not in layer.name
            ]
            if len(candidates) == 1:
                bn = candidates[0]
        if bn is None:
            found = ", ".join(f"'{p.name}' ({type(p).__name__})" for p in producers) or "nothing"
            raise ValueError(
                f"overhaul_bn_layers: the input of '{stage}' in model "
                f"'{model.name}' comes from {found}, not from a "
                "BatchNormalization or a residual Add of one BN branch."
            )
        names.append(bn.name)
    return names
