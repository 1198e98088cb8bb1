"""Tests of keras_kd.backends: the same Distiller step on TensorFlow and JAX."""
