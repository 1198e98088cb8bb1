"""tf.distribute: a 2-replica MirroredStrategy follows the one-device objective."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.paths import SCRIPTS
from tests.helpers.processes import subprocess_timeout

SCRIPT = os.path.join(SCRIPTS, "mirrored_check.py")


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device_on_the_global_batch():
    # Logical devices must be set before TensorFlow starts: a fresh process.
    result = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True,
                            timeout=subprocess_timeout())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    for key in ("loss", "student_loss", "kd", "dkd", "nkd", "hint"):
        assert report["two"][key] == pytest.approx(report["one"][key], rel=1e-5, abs=1e-6), key
        # Semi-supervised batches whose labels fall unevenly across replicas.
        assert report["semi_two"][key] == pytest.approx(report["semi_one"][key], rel=1e-5, abs=1e-6), key
    assert report["max_weight_diff"] < 1e-5
    assert report["semi_max_weight_diff"] < 1e-5
