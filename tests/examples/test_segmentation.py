"""examples/segmentation.py: the mosaic task, the metrics, a 1-step run of every method."""

import json

import numpy as np
import pytest

from tests.helpers.example_scripts import load_example


@pytest.fixture(scope="module")
def example():
    return load_example("segmentation")


def test_mosaic_labels_follow_the_item_pixels(example):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (5, 28, 28, 1)).astype("float32")
    labels = np.arange(5, dtype="int32")
    x, y = example.mosaics(images, labels, count=3, seed=1, threshold=0.6, background=0.2)
    assert x.shape == (3, 56, 56, 1) and y.shape == (3, 56, 56)
    picks = np.random.default_rng(1).integers(0, 5, size=(3, 4))
    top_right = picks[:, 1]
    for i in range(3):
        tile = images[top_right[i], :, :, 0]
        np.testing.assert_array_equal(x[i, :28, 28:, 0], tile)
        expected = np.full((28, 28), -1)
        expected[tile > 0.6] = labels[top_right[i]]
        expected[tile < 0.2] = example.BACKGROUND
        np.testing.assert_array_equal(y[i, :28, 28:], expected)


def test_scores_are_pixel_accuracy_and_miou_over_labelled_pixels(example):
    class Fixed:
        def predict(self, x, batch_size=None, verbose=0):
            return x

    y = np.array([[[0, 1], [1, -1]]])
    logits = np.zeros((1, 2, 2, example.CLASSES))
    logits[0, 0, 0, 0] = logits[0, 0, 1, 1] = logits[0, 1, 0, 0] = logits[0, 1, 1, 1] = 1.0
    scores = example.segmentation_scores(Fixed(), logits, y)
    assert scores["pixel_accuracy"] == pytest.approx(2 / 3)
    # class 0: hits 1, union 2; class 1: hits 1, union 2
    assert scores["miou"] == pytest.approx(0.5)


def test_quick_run_of_every_method_writes_results_and_a_table(example, tmp_path, capsys,
                                                              fashion_mnist):
    # Real Fashion-MNIST: skips without Debian's dataset-fashion-mnist
    # (fails instead under KERAS_KD_REQUIRE_REAL_DATA=1, as in CI).
    out = tmp_path / "seg.json"
    payload = example.main(["--quick", "--seeds", "0", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert set(saved["results"]) == {"scratch", "kd", "cwd"}
    for method in ("scratch", "kd", "cwd"):
        scores = saved["results"][method]["0"]
        assert 0.0 <= scores["miou"] <= scores["pixel_accuracy"] <= 1.0
    assert payload["teacher"]["trained_now"] is True
    table = example.summarize(saved["results"])
    assert table.count("\n") == 4 and "| kd |" in table and "| cwd |" in table
