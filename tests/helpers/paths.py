"""Paths the tests use, computed once: the repository root (wherever a test
module sits under tests/) and the scripts that subprocess tests run."""

import os

HELPERS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HELPERS))
SCRIPTS = os.path.join(HELPERS, "scripts")
