"""Tests of keras_kd.teachers.caching: the teacher cache."""
