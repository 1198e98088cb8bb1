"""Tests of keras_kd.losses: one module per method, against numpy references."""
