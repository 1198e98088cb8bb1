"""Tests of keras_kd.checks: what the Distiller refuses, and the message naming the fix."""
