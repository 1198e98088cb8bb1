"""Smoke test of every CIFAR-100 recipe (recipes/cifar100/*.yaml).

Each file is loaded and validated (the teacher .keras files need not exist),
then trained for 2 steps on random 32×32×3 images with labels 0..99, with the
teacher replaced by its zoo architecture with random weights (built once per
module), batch 2, eagerly (no tracing), no export and no backup. The losses
must be finite. The real 240-epoch runs are `keras-kd distill FILE`.

Only the training losses are checked: a random-weight ResNet teacher has huge
stage features (FitNet's hint starts near 1e5 at weight 100), so lr 0.05 can
blow the student up after step 2; that says nothing about the recipe.
"""

import glob
import math
import os

import numpy as np
import pytest

from keras_kd import zoo
from keras_kd.tools.config import validate as config
from keras_kd.tools.run import runner as run_config

from tests.helpers.paths import ROOT

RECIPES = sorted(glob.glob(os.path.join(ROOT, "recipes", "cifar100", "*.yaml")))
TEACHER_FILES = {
    "saved_models/cifar100_resnet32x4.keras": "resnet32x4",
    "saved_models/cifar100_wrn_40_2.keras": "wrn_40_2",
}


def test_every_pair_has_every_method_and_its_teacher_recipe():
    names = {os.path.basename(p) for p in RECIPES}
    for pair in ("resnet32x4_resnet8x4", "wrn_40_2_wrn_16_2"):
        for method in ("scratch", "kd", "fitnet", "at", "fsp", "overhaul", "review", "dkd",
                       "nkd"):
            assert f"{pair}_{method}.yaml" in names
    assert {"teacher_resnet32x4.yaml", "teacher_wrn_40_2.yaml"} <= names


@pytest.fixture(scope="module")
def teachers():
    """Each teacher architecture once, random weights."""
    return {path: zoo.get(name) for path, name in TEACHER_FILES.items()}


@pytest.fixture(scope="module")
def random_data():
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 100, size=4).astype(np.int32)
    return x, y


@pytest.mark.parametrize("path", RECIPES, ids=[os.path.basename(p)[:-5] for p in RECIPES])
def test_recipe_validates_and_trains_two_steps(path, teachers, random_data, tmp_path):
    cfg = config.load(path, overrides=["dataset.batch_size=2", f"output_dir={tmp_path}"],
                      check_files=False)
    assert cfg["dataset"]["name"] == "cifar100" and cfg["optimizer"]["name"] == "sgd"
    teacher = None
    if cfg["teacher"] is not None:
        assert cfg["teacher"] in TEACHER_FILES, cfg["teacher"]
        # The teacher path is what the teacher recipe exports.
        stem = cfg["teacher"][: -len(".keras")]
        exported = {config.load(p, check_files=False)["export"]["path"]
                    for p in RECIPES if os.path.basename(p).startswith("teacher_")}
        assert stem in exported
        teacher = teachers[cfg["teacher"]]
    x, y = random_data
    results = run_config.run(cfg, train_data=(x, y), test_data=(x[:2], y[:2]),
                             teacher_model=teacher, steps_per_epoch=2, epochs=1,
                             export=False, backup=False, run_eagerly=True, verbose=0)
    losses = {k: v[-1] for k, v in results["history"].items() if k.endswith("loss") or k in (
        "kd", "hint", "attention", "fsp", "overhaul", "review", "dkd", "nkd")}
    assert losses, results["history"]
    for name, value in losses.items():
        assert math.isfinite(value), (name, value)
    # Every distillation term the recipe lists was computed and is not 0
    # (the history holds unweighted values).
    terms = set(losses) - {"loss", "student_loss"}
    assert (cfg["teacher"] is None) == (not terms), (cfg["teacher"], terms)
    for name in terms:
        assert losses[name] > 0, (name, losses[name])
    assert 0.0 <= results["test_accuracy"] <= 1.0
    if cfg["teacher_cache"]:  # the logit recipes train from cached crop+flip views
        assert os.path.isfile(os.path.join(tmp_path, "teacher_cache", "complete.json"))
