"""A small compiled KD Distiller on random 8x8 images, for the tests of what
the Distiller accepts and refuses (tests/checks/, test_atomic.py, ...)."""

import numpy as np
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.models import tiny_cnn

X = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
Y = np.arange(32) % 10


def kd_distiller(terms=None, teacher=None, student=None, **compile_kwargs):
    """tiny_cnn(16) teaching tiny_cnn(8) with KD at T = 4 (unless told otherwise),
    compiled with Adam and the sparse CE (unless told otherwise)."""
    teacher = teacher or tiny_cnn(16, name="teacher")
    student = student or tiny_cnn(8, name="student")
    terms = [losses.KD(temperature=4.0)] if terms is None else terms
    distiller = keras_kd.Distiller(teacher, student, losses=terms)
    compile_kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    return distiller.compile(optimizer="adam", **compile_kwargs)


def batches(*arrays, batch=8):
    """The arrays as a batched tf.data.Dataset (of tuples if several)."""
    return tf.data.Dataset.from_tensor_slices(arrays if len(arrays) > 1 else arrays[0]).batch(batch)


def fit(distiller, *args, **kwargs):
    """distiller.fit, silent, 1 epoch unless told; returns the history dict."""
    kwargs.setdefault("epochs", 1)
    return distiller.fit(*args, verbose=0, **kwargs).history
