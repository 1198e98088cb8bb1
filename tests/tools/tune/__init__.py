"""Tests of keras_kd.tools.tune: `keras-kd tune`."""
