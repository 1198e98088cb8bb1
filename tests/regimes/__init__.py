"""Tests of keras_kd.regimes: schedules, stages, self-distillation."""
