"""Tests of keras_kd.tools.config: run-config files and their validation."""
