"""Tiny Functional CNNs with named conv/BN/ReLU stages, and a 2-step
Distiller run, for the feature-term tests (tests/losses/)."""

import keras
import numpy as np
from keras import layers

import keras_kd


def feature_net(widths=(4, 8), strides=(1, 2), classes=3, embed=None,
                name="net", input_shape=(8, 8, 1)):
    """Input → [conv{k} → bn{k} → relu{k}] per stage → gap → (embed) → logits.

    With the defaults the stages are (8, 8, 4) and (4, 4, 8).
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for k, (width, stride) in enumerate(zip(widths, strides), start=1):
        x = layers.Conv2D(width, 3, strides=stride, padding="same",
                          name=f"conv{k}")(x)
        x = layers.BatchNormalization(name=f"bn{k}")(x)
        x = layers.ReLU(name=f"relu{k}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if embed:
        x = layers.Dense(embed, name="embed")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def randomize_bn_layer(layer, rng):
    """Non-trivial gamma (either sign), beta and moving statistics."""
    c = layer.gamma.shape[0]
    layer.set_weights([
        rng.uniform(0.5, 1.5, c).astype("float32") * rng.choice([-1, 1], c),
        rng.normal(0, 1, c).astype("float32"),
        rng.normal(0, 0.1, c).astype("float32"),
        rng.uniform(0.5, 1.5, c).astype("float32"),
    ])


def randomize_batchnorm(model, seed=0):
    """Gives every BatchNormalization of `model` random parameters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            randomize_bn_layer(layer, rng)
    return model


class _StepValues(keras.callbacks.Callback):
    """The term's value at every step (Keras logs a running mean per epoch;
    with one step per epoch each epoch's value is that step's value)."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        self.values = []

    def on_epoch_end(self, epoch, logs=None):
        self.values.append(float(logs[self.name]))


def fit_two_steps(term, teacher, student, jit_compile=False, batch=4, steps=3,
                  before_fit=None):
    """Distils `student` from `teacher` with `term` ALONE (student loss
    weight 0) for `steps` SGD steps on one fixed batch (calling
    `before_fit(distiller)` once it is built), and checks that the term
    trains the student: its first value is not 0, every step's value is
    finite, gradients reach the student's weights (nothing else moves them),
    and the value on that batch decreases. Returns (distiller, history)."""
    # Terms that read the models (Overhaul) need their prepare hook before the
    # Distiller gathers taps; calling it again is harmless.
    term.prepare(teacher, student)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch,) + tuple(student.input.shape[1:])).astype("float32")
    y = rng.integers(0, student.output.shape[-1], size=(batch,))
    distiller = keras_kd.Distiller(teacher, student, losses=[term], student_loss_weight=0.0)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    if before_fit is not None:
        before_fit(distiller)
    student_before = [np.array(w) for w in student.trainable_weights]
    values = _StepValues(term.metric_name)
    history = distiller.fit(x, y, batch_size=batch, epochs=steps, verbose=0,
                            shuffle=False, callbacks=[values])
    assert np.all(np.isfinite(values.values)), (term.name, values.values)
    assert np.all(np.isfinite(history.history["loss"]))
    assert values.values[0] > 1e-6, f"{term.name} is ~0 before training: {values.values}"
    moved = [not np.array_equal(b, np.array(w))
             for b, w in zip(student_before, student.trainable_weights)]
    assert any(moved), f"no gradient of {term.name} reached the student"
    assert values.values[-1] < values.values[0], (
        f"{term.name} did not decrease on a fixed batch: {values.values}")
    return distiller, history


def weights_of(layer):
    return [np.array(w) for w in layer.get_weights()]


def assert_config_round_trip(term):
    config = term.get_config()
    clone = type(term).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(term)
    again = keras.saving.deserialize_keras_object(serialized)
    assert type(again) is type(term)
    assert again.get_config() == config
    return clone
