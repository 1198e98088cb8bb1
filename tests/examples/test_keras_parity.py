"""examples/keras_parity.py: keras-kd's KD at weight 0.9 beside a 0.1 hard-label
weight IS keras.distillation's α·CE + (1 − α)·KD (α = 0.1) — same init, same
batches, same weights after training — and weight 1.0 is not."""

import keras
import numpy as np
import pytest

from keras_kd import zoo
from keras_kd.taps.views import LOGITS

from tests.helpers.example_scripts import load_example


@pytest.fixture(scope="module")
def parity():
    return load_example("keras_parity")


def _train(parity, row, initial, x, y, t, orders):
    student = zoo.mlp((8, 8, 1), 10, hidden=(16,), name="student")
    student.set_weights(initial)
    teacher = zoo.mlp((8, 8, 1), 10, hidden=(4,), name="teacher")  # shapes only: logits cached
    model = parity.build_row(row, teacher, student, 10)
    for order in orders:
        if row == "keras.distillation":
            data = parity._batches((x, t, y), order, 16).map(lambda a, b, c: ((a, b), c))
        else:
            data = parity._batches((x, y, t), order, 16).map(lambda a, b, c: (a, b, {LOGITS: c}))
        model.fit(data, epochs=1, verbose=0)
    return student.get_weights()


def test_kd_weight_0_9_trains_exactly_like_keras_distillation(parity):
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 64).astype("int64")
    t = (3.0 * rng.normal(size=(64, 10))).astype("float32")
    keras.utils.set_random_seed(1)
    initial = zoo.mlp((8, 8, 1), 10, hidden=(16,), name="student").get_weights()
    orders = parity.epoch_orders(0, 64, 2)
    assert not np.array_equal(orders[0], orders[1])
    ours = _train(parity, "keras_kd w=0.9", initial, x, y, t, orders)
    theirs = _train(parity, "keras.distillation", initial, x, y, t, orders)
    other = _train(parity, "keras_kd w=1.0", initial, x, y, t, orders)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(ours, initial))
    assert moved > 1e-3  # 8 Adam steps at 1e-3 moved the weights
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(other, theirs))
    assert gap > 1e-5, "KD weight 1.0 should not coincide with Keras's (1 − α) = 0.9"


def test_table_pairs_each_seed_against_keras(parity):
    results = {
        "0": {"keras_kd w=1.0": 1000, "keras_kd w=0.9": 1010, "keras.distillation": 1012},
        "1": {"keras_kd w=1.0": 990, "keras_kd w=0.9": 995, "keras.distillation": 993},
        "2": {"keras_kd w=1.0": 980},  # unfinished seed: left out
    }
    text, summary = parity.table(results, [0, 1, 2])
    assert summary["keras_kd w=1.0"]["mean"] == pytest.approx((-12 - 3) / 2)
    assert summary["keras_kd w=0.9"]["mean"] == pytest.approx((-2 + 2) / 2)
    assert summary["keras_kd w=0.9"]["sd"] == pytest.approx(np.std([-2, 2], ddof=1))
    assert summary["keras_kd w=1.0"]["wins"] == 2 and summary["keras_kd w=0.9"]["losses"] == 1
    assert "| 0 | 1000 | 1010 | 1012 | -12 | -2 |" in text
    assert not any(line.startswith("| 2 |") for line in text.splitlines())


@pytest.mark.slow
def test_quick_run_on_fashion_mnist_resumes(parity, tmp_path, fashion_mnist):
    out = tmp_path / "parity.json"
    first = parity.run([0], 1, 128, str(out), train_size=500, test_size=200, log=lambda *_: None)
    assert set(first["errors"]["0"]) == set(parity.ROWS)
    again = parity.run([0], 1, 128, str(out), train_size=500, test_size=200,
                       log=lambda *_: None)
    assert again["errors"] == first["errors"]
