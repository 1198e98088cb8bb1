"""Tests of keras_kd.taps: model views, nested paths, several outputs."""
