"""Tests of keras_kd.tools.run: `keras-kd distill CONFIG` runs."""
