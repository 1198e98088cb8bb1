"""examples/transfer_fsp.py: FSP transfer from a teacher of other classes (tiny
settings)."""

import numpy as np
import pytest

from tests.helpers.example_scripts import load_example


def test_transfer_subset_reindexes_the_classes():
    transfer = load_example("transfer_fsp")
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    y = np.repeat(np.arange(10), 2)
    xs, ys = transfer.subset(x, y, range(5, 10))
    assert sorted(set(ys.tolist())) == [0, 1, 2, 3, 4]
    assert xs[0, 0] == 10.0 and ys[0] == 0


@pytest.mark.slow
def test_fsp_transfer_from_a_teacher_of_other_classes():
    transfer = load_example("transfer_fsp")
    teacher = transfer.train_teacher_0_4(epochs=2)
    result = transfer.compare(teacher, epochs=1, fsp_epochs=3, label_fraction=0.2, seed=1, bn_passes=5)
    assert 0.0 <= result["scratch"] <= 1.0 and 0.0 <= result["fsp"] <= 1.0
    # The student's flow moves towards the teacher's, with no shared classes.
    assert result["fsp_loss"][-1] < 0.5 * result["fsp_loss"][0]
