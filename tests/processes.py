"""Running test subprocesses together, bounded in time, always cleaned up."""

import json
import os
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_together(commands, timeout):
    """Starts every command at once and waits for all of them; on a timeout
    or any error every process still running is killed and reaped."""
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
                pytest.fail(f"timed out after {timeout} s; stderr tails:\n" + "\n---\n".join(tails))
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
