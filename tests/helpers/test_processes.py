"""The subprocess tests' time limit: generous, and set by KERAS_KD_TEST_TIMEOUT."""

import sys

import pytest

from tests.helpers.processes import DEFAULT_TIMEOUT, TIMEOUT_ENV, run_together, subprocess_timeout


def test_default_is_generous(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert subprocess_timeout() == DEFAULT_TIMEOUT >= 900


def test_the_environment_sets_it(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "1800")
    assert subprocess_timeout() == 1800.0


@pytest.mark.parametrize("bad", ["soon", "0", "-5"])
def test_bad_values_are_refused_by_name(monkeypatch, bad):
    monkeypatch.setenv(TIMEOUT_ENV, bad)
    with pytest.raises(ValueError, match=TIMEOUT_ENV):
        subprocess_timeout()


def test_run_together_uses_it_and_says_how_to_allow_more(monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(pytest.fail.Exception, match=f"timed out after 1.0 s .*{TIMEOUT_ENV}"):
        run_together([sleeper])
