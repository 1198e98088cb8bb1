"""Tiny Functional models for tests (8x8x1 inputs, named layers), and the
trainable-parameter count PyTorch reports."""

import keras
import numpy as np
from keras import layers


class CallCounter(layers.Layer):
    """Identity layer counting how many times the graph runs it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="count",
            dtype="float32",
        )

    def call(self, x):
        self.count.assign_add(1.0)
        return x


def tiny_cnn(width=8, classes=10, name="cnn", counter=False, regularizer=None,
             input_shape=(8, 8, 1)):
    inputs = keras.Input(input_shape)
    x = inputs
    if counter:
        x = CallCounter(name="counter")(x)
    x = layers.Conv2D(width, 3, padding="same", name="conv1",
                      kernel_regularizer=regularizer)(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.Conv2D(width * 2, 3, padding="same", name="conv2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


class RunCounter:
    """Counts how many times `layer` runs, without changing the model.

    `runs` is a variable the layer's call increments, so it counts the runs
    of a compiled (graph or XLA) step, not just the traces. Use it where a
    `CallCounter` layer cannot be inserted (models built by the library)."""

    def __init__(self, layer):
        self.variable = keras.Variable(0.0, trainable=False, dtype="float32",
                                       name=f"{layer.name}_runs")
        original = layer.call

        def counted_call(*args, **kwargs):
            self.variable.assign_add(1.0)
            return original(*args, **kwargs)

        layer.call = counted_call

    @property
    def runs(self):
        return float(keras.ops.convert_to_numpy(self.variable))

    def reset(self):
        self.variable.assign(0.0)


def trainable_count(model):
    """What PyTorch's sum(p.numel() for p in model.parameters()) counts: BN
    moving statistics are buffers there, not parameters."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)
