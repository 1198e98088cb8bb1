"""Small Functional models with named layers to tap, for examples and tests.

Every model outputs logits (no softmax) from a layer named `"logits"`. Conv
stages are named `stage{i}_conv`, `stage{i}_bn`, `stage{i}_relu`, so a term
can tap `"stage2_relu"` (post-activation) or `"stage2_relu:input"`
(pre-activation, the BN output).
"""

import keras
from keras import layers


def cnn(
    input_shape=(8, 8, 1),
    num_classes=10,
    widths=(32, 64, 128),
    convs_per_stage=1,
    pool_after=(1,),
    dense=None,
    dropout=0.0,
    name="cnn",
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
            x = layers.BatchNormalization(name=f"stage{stage}_bn{suffix}")(x)
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


def digits_teacher(input_shape=(8, 8, 1), num_classes=10):
    """The teacher shipped in `saved_models/digits_teacher.keras` (~290k params)."""
    return cnn(
        input_shape, num_classes, widths=(32, 64, 128), convs_per_stage=2,
        pool_after=(2,), dense=None, dropout=0.3, name="digits_teacher",
    )


def digits_student(input_shape=(8, 8, 1), num_classes=10):
    """The demo's student: a small MLP (~2.4k params)."""
    return mlp(input_shape, num_classes, hidden=(32,), name="digits_student")
