"""Tests of keras_kd.zoo: the models and the recipes."""
