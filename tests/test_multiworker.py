"""tf.distribute: a 2-worker MultiWorkerMirroredStrategy follows the one-device
objective.

Two worker processes on 127.0.0.1 (TF_CONFIG, gRPC + ring all-reduce on CPU)
train the Distiller of tests/helpers/scripts/mirrored_check.py for 3 steps of global
batch 16; a third process trains it on one device. Losses must agree to
1e-5 (relative; 1e-6 absolute for the tiny kd value) and weights to 1e-5.

Keras 3.15's `fit` does not run under MultiWorkerMirroredStrategy as
shipped (two bugs in keras/src/backend/tensorflow/trainer.py, unrelated to
keras_kd); the worker script patches both, see its docstrings.
"""

import os
import socket
import sys

import numpy as np
import pytest

from tests.helpers.paths import SCRIPTS
from tests.helpers.processes import report, run_together

SCRIPT = os.path.join(SCRIPTS, "multiworker_check.py")


def _free_ports(count):
    """Ports the OS picked as free on 127.0.0.1 (bound together so they
    differ, released just before the workers bind them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_multiworker_mirrored_strategy_matches_one_device(tmp_path):
    _check_against_one_device(tmp_path)


@pytest.mark.slow
def test_multiworker_from_one_shared_teacher_cache_matches_one_device(tmp_path, monkeypatch):
    # All three processes build (or load) one on-disk cache of crop+flip views.
    # One view per sample: with K > 1 each worker draws its own view per
    # sample and pass (still the cached view's outputs, fingerprint-checked),
    # so the run is not bit-equal to one device (docs/cache.md).
    monkeypatch.setenv("KERAS_KD_CACHE_DIR", str(tmp_path / "teacher_cache"))
    _check_against_one_device(tmp_path)


def _check_against_one_device(tmp_path):
    ports = ",".join(str(p) for p in _free_ports(2))
    out = str(tmp_path)
    results = run_together([
        [sys.executable, SCRIPT, "worker", "0", ports, out],
        [sys.executable, SCRIPT, "worker", "1", ports, out],
        [sys.executable, SCRIPT, "single", out],
    ])  # about 25-30 s normally; limit: subprocess_timeout()
    workers = [report(results[i], f"worker {i}") for i in range(2)]
    single = report(results[2], "the one-device run")

    assert [w["replicas"] for w in workers] == [2, 2]
    assert single["replicas"] == 1
    # Same starting point everywhere, same number of steps.
    assert {r["initial_checksum"] for r in workers + [single]} == {single["initial_checksum"]}
    assert [w["iterations"] for w in workers] == [3, 3] and single["iterations"] == 3
    # The all-reduce keeps the two workers' copies identical, bit for bit.
    assert workers[0]["checksum"] == workers[1]["checksum"]
    for key in ("loss", "student_loss", "kd", "dkd", "nkd", "hint"):
        for worker in workers:
            assert worker["logs"][key] == pytest.approx(single["logs"][key], rel=1e-5, abs=1e-6), key

    one = np.load(tmp_path / "single.npz")
    for index in range(2):
        mw = np.load(tmp_path / f"worker{index}.npz")
        names = [n for n in one.files if n.startswith("w")]
        assert sorted(mw.files) == sorted(one.files)
        diff = max(float(np.abs(mw[n] - one[n]).max()) for n in names)
        assert diff < 1e-5, f"worker {index}: max weight difference {diff}"
