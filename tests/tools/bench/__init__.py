"""Tests of keras_kd.tools.bench: `keras-kd bench`."""
