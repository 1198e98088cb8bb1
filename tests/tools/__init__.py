"""Tests of keras_kd.tools: the keras-kd command line."""
