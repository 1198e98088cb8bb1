"""The Distiller both tf.distribute scripts train: KD + DKD + NKD + a feature
term with an adapter, on a small CNN pair without BatchNormalization (whose
per-replica statistics would differ from one device's by design).
Imported by mirrored_check.py and multiworker_check.py after they have set
up TensorFlow's devices; importing it configures nothing."""

import keras

import keras_kd
from keras_kd import losses


def model(width, name):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(width * 2, 3, padding="same", name="conv2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x), name=name)


def build():
    terms = [losses.KD(temperature=4.0), losses.DKD(warmup_epochs=0), losses.NKD(),
             losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")]
    distiller = keras_kd.Distiller(model(16, "teacher"), model(8, "student"), losses=terms,
                                   student_loss_weight=0.5)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    return distiller
