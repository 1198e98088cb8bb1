"""Running test subprocesses together, bounded in time, always cleaned up."""

import json
import os
import subprocess
import time

import pytest

from tests.helpers.paths import ROOT

TIMEOUT_ENV = "KERAS_KD_TEST_TIMEOUT"
DEFAULT_TIMEOUT = 900.0


def subprocess_timeout():
    """Seconds a test's subprocess (or group of them) may run: the
    environment variable KERAS_KD_TEST_TIMEOUT, default 900. Generous on
    purpose: the runs take 10-60 s on an idle machine, but a busy 2-core CI
    can be 10x slower, and a timeout there is a false failure."""
    value = os.environ.get(TIMEOUT_ENV)
    if value is None or not value.strip():
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {value!r}.") from None
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0 seconds, got {value!r}.")
    return seconds


def run_together(commands, timeout=None):
    """Starts every command at once and waits for all of them (at most
    `timeout` seconds, default `subprocess_timeout()`); on a timeout or any
    error every process still running is killed and reaped."""
    timeout = subprocess_timeout() if timeout is None else timeout
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    env.pop("TF_CONFIG", None)
    procs = []
    try:
        for command in commands:
            procs.append(subprocess.Popen(command, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True,
                                          cwd=ROOT, env=env))
        deadline = time.monotonic() + timeout
        results = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                for other in procs:
                    if other.poll() is None:
                        other.kill()
                tails = [other.communicate()[1][-1500:] for other in procs]
                pytest.fail(f"timed out after {timeout} s (set {TIMEOUT_ENV} to allow more); stderr tails:\n" + "\n---\n".join(tails))
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def report(result, what):
    code, out, err = result
    assert code == 0, f"{what} exited with {code}:\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])
