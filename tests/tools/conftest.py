"""Fixtures of the command-line tests."""

import pytest

from tests.helpers.paths import ROOT


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)
