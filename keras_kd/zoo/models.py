"""Functional models with named layers to tap, for examples, tests and
benchmarks.

Every model outputs logits (no softmax) from a layer named `"logits"`, after
a global pool named `"pool"` (the MLPs have no pool). Conv models expose the
output of stage i (i = 1, 2, 3) as a ReLU layer named `stage{i}_relu`, so a
term can tap `"stage2_relu"` (post-activation) or `"stage2_relu:input"`
(pre-activation) and the recipes of `keras_kd.zoo.recipes` work unchanged.

- `cnn`, `mlp` and the small models built from them: `digits_teacher` /
  `digits_student` (8×8 digits), `fmnist_teacher` / `fmnist_student`
  (28×28 Fashion-MNIST), `hinton_teacher` / `hinton_student` /
  `hinton_tiny` (Hinton et al. 2015's MNIST MLPs);
- the CIFAR models of RepDistiller (Tian et al. 2020,
  github.com/HobbitLong/RepDistiller), same architecture and parameter
  count: `resnet` (`resnet8x4`, `resnet32x4`, `resnet20`, `resnet56`) and
  `wrn` (`wrn_40_2`, `wrn_16_2`); `overhaul_bn_layers(model)` names the
  teacher BNs to pass to `losses.Overhaul(..., bn_layers=...)`;
- `get(name)` builds any of them by name (`NAMES`).
"""

import keras
from keras import layers

from keras_kd.zoo.cifar import (
    resnet8x4,
    resnet20,
    resnet32x4,
    resnet56,
    wrn_16_2,
    wrn_40_2,
)


def cnn(
    input_shape=(8, 8, 1),
    num_classes=10,
    widths=(32, 64, 128),
    convs_per_stage=1,
    pool_after=(1,),
    dense=None,
    dropout=0.0,
    name="cnn",
    bn_momentum=0.99,
):
    """A VGG-style CNN: stages of 3×3 conv + BN + ReLU, optional max-pool.

    Args:
        input_shape: NHWC input without the batch dim.
        num_classes: logits width.
        widths: channels of each stage.
        convs_per_stage: conv+BN+ReLU blocks per stage; the last block of
            stage i is named `stage{i}_conv/_bn/_relu`, earlier ones
            `stage{i}_conv{j}` etc.
        pool_after: 1-based stage indices followed by a 2×2 max-pool.
        dense: width of a hidden dense layer after global pooling, or None.
        dropout: dropout rate before the logits.
        bn_momentum: BatchNormalization momentum (Keras's default 0.99
            averages over ~100 steps; 0.9, PyTorch's, tracks weights that
            still move at the end of training, see `fmnist_teacher`).
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for stage, width in enumerate(widths, start=1):
        for block in range(1, convs_per_stage + 1):
            suffix = "" if block == convs_per_stage else str(block)
            x = layers.Conv2D(
                width, 3, padding="same", use_bias=False,
                name=f"stage{stage}_conv{suffix}",
            )(x)
            x = layers.BatchNormalization(
                momentum=bn_momentum, name=f"stage{stage}_bn{suffix}"
            )(x)
            x = layers.ReLU(name=f"stage{stage}_relu{suffix}")(x)
        if stage in pool_after:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dense:
        x = layers.Dense(dense, activation="relu", name="hidden")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def mlp(
    input_shape=(8, 8, 1),
    num_classes=10,
    hidden=(32,),
    dropout=0.0,
    name="mlp",
):
    """A ReLU MLP; hidden layers are named `hidden{i}` (1-based)."""
    inputs = keras.Input(input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(hidden, start=1):
        x = layers.Dense(width, activation="relu", name=f"hidden{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def digits_teacher(input_shape=(8, 8, 1), num_classes=10, name="digits_teacher"):
    """The teacher shipped in `saved_models/digits_teacher.keras` (~290k params)."""
    return cnn(
        input_shape, num_classes, widths=(32, 64, 128), convs_per_stage=2,
        pool_after=(2,), dense=None, dropout=0.3, name=name,
    )


def digits_student(input_shape=(8, 8, 1), num_classes=10, name="digits_student"):
    """The demo's student: a small MLP (~2.4k params)."""
    return mlp(input_shape, num_classes, hidden=(32,), name=name)


# ---------------------------------------------------------------------------
# Fashion-MNIST / MNIST (28×28×1) models
# ---------------------------------------------------------------------------


def fmnist_teacher(input_shape=(28, 28, 1), num_classes=10, name="fmnist_teacher"):
    """A Fashion-MNIST teacher CNN: 3 stages (16, 32, 64 channels) of three
    conv-BN-ReLU blocks, max-pool after stages 1 and 2, global pool, logits.

    121,274 trainable parameters (121,946 with the BN moving statistics).
    Same widths as `fmnist_student`, deeper: the ResNet32x4 → ResNet8x4
    relation, so FSP's flow matrices match without an adapter.

    BN momentum 0.9: with Keras's 0.99, Adam at a constant 1e-3 left the nine
    BN layers' moving statistics so far behind the weights that test accuracy
    in inference mode was 77.6% against 91.6% on batch statistics.
    """
    return cnn(input_shape, num_classes, widths=(16, 32, 64), convs_per_stage=3,
               pool_after=(1, 2), dropout=0.0, name=name, bn_momentum=0.9)


def fmnist_student(input_shape=(28, 28, 1), num_classes=10, name="fmnist_student"):
    """The Fashion-MNIST student: `fmnist_teacher`'s widths (16, 32, 64) with
    one conv-BN-ReLU per stage. 24,058 trainable parameters (24,282 with the
    BN moving statistics): 5.0× fewer than the teacher."""
    return cnn(input_shape, num_classes, widths=(16, 32, 64), pool_after=(1, 2),
               name=name, bn_momentum=0.9)


def hinton_teacher(input_shape=(28, 28, 1), num_classes=10, name="hinton_teacher"):
    """Hinton et al. 2015's MNIST teacher: an MLP with two hidden layers of
    1200 ReLUs and dropout 0.5 (2,395,210 parameters). The paper also
    jittered the inputs and used max-norm constraints; those are not here."""
    return mlp(input_shape, num_classes, hidden=(1200, 1200), dropout=0.5, name=name)


def hinton_student(input_shape=(28, 28, 1), num_classes=10, name="hinton_student"):
    """Hinton et al. 2015's MNIST student: two hidden layers of 800 ReLUs,
    no regularization (1,276,810 parameters)."""
    return mlp(input_shape, num_classes, hidden=(800, 800), name=name)


def hinton_tiny(input_shape=(28, 28, 1), num_classes=10, name="hinton_tiny"):
    """A tiny MNIST MLP: two hidden layers of 30 ReLUs (24,790 parameters),
    the smallest net of Hinton et al. 2015's MNIST experiments."""
    return mlp(input_shape, num_classes, hidden=(30, 30), name=name)


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

_REGISTRY = {
    "digits_teacher": digits_teacher,
    "digits_student": digits_student,
    "resnet8x4": resnet8x4,
    "resnet32x4": resnet32x4,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "wrn_40_2": wrn_40_2,
    "wrn_16_2": wrn_16_2,
    "fmnist_teacher": fmnist_teacher,
    "fmnist_student": fmnist_student,
    "hinton_teacher": hinton_teacher,
    "hinton_student": hinton_student,
    "hinton_tiny": hinton_tiny,
}
NAMES = tuple(_REGISTRY)


def get(name, /, input_shape=None, num_classes=None, **kwargs):
    """A fresh model of the zoo by name (one of `NAMES`).

    `input_shape` and `num_classes` default per model (digits: (8, 8, 1)/10;
    CIFAR ResNets/WRNs: (32, 32, 3)/100; fmnist/hinton: (28, 28, 1)/10);
    pass them to override. Other keyword arguments (e.g. `name=`) go to the
    builder; `name` is positional-only, so `name=` names the model.

    Example:

    ```python
    teacher = keras_kd.zoo.get("resnet32x4")
    student = keras_kd.zoo.get("resnet8x4", num_classes=10)
    ```
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"Unknown zoo model {name!r}; known: {', '.join(NAMES)}.")
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _REGISTRY[name](**kwargs)
