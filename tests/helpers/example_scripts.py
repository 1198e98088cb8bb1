"""Loads a script of examples/ as a module, so tests can call its functions."""

import importlib.util
import os

from tests.helpers.paths import ROOT

EXAMPLES = os.path.join(ROOT, "examples")


def load_example(name):
    """`examples/<name>.py` as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
