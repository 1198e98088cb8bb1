"""Fixtures of the bench tests."""

import pytest

from keras_kd import datasets


@pytest.fixture(scope="module")
def small_digits():
    x, y = datasets.load("digits", "train", as_numpy=True)
    xt, yt = datasets.load("digits", "test", as_numpy=True)
    return (x[:192], y[:192]), (xt[:64], yt[:64])
