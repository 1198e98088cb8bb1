"""Smoke tests of the run configs in recipes/."""
