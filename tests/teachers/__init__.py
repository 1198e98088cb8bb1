"""Tests of keras_kd.teachers: ensembles and merged teachers."""
