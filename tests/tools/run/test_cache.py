"""`teacher_cache:` in run configs: validation and a run from cached views."""

import json
import os

import numpy as np
import pytest

from keras_kd.tools.config import validate as config
from keras_kd.tools.run import runner as run_config
from tests.helpers.models import tiny_cnn


def _raw(**extra):
    raw = {"teacher": "resnet32x4", "student": "resnet8x4", "epochs": 1,
           "dataset": {"name": "cifar100", "augment": "cifar"},
           "terms": [{"type": "KD", "temperature": 4}]}
    raw.update(extra)
    return raw


def test_teacher_cache_section_is_validated():
    cfg = config.validate(_raw(teacher_cache={"views": 4}), check_files=False)
    assert cfg["teacher_cache"] == {"views": 4, "top_k": None, "tail_bits": None, "path": None,
                                    "seed": 0}
    assert config.validate(_raw(), check_files=False)["teacher_cache"] is None
    with pytest.raises(config.ConfigError) as error:
        config.validate(_raw(teacher_cache={"views": 0, "topk": 3}), check_files=False)
    assert "teacher_cache.topk: unknown key" in str(error.value)
    assert "teacher_cache.views: expected" in str(error.value)
    raw = _raw(teacher_cache={"views": 4, "top_k": 10})
    raw["dataset"]["augment"] = "none"
    with pytest.raises(config.ConfigError) as error:
        config.validate(raw, check_files=False)
    assert "teacher_cache.views: 4 views need an augmentation" in str(error.value)
    assert "teacher_cache.top_k: a top-k cache has no full teacher logits, which KD need" in str(error.value)
    ok = config.validate(_raw(terms=[{"type": "TopKKD", "k": 10, "temperature": 4}],
                              teacher_cache={"top_k": 10}), check_files=False)
    assert ok["teacher_cache"]["top_k"] == 10


@pytest.mark.parametrize("term, section, stored", [
    ({"type": "TopKKD", "k": 3, "temperature": 2}, {"views": 3, "top_k": 3},
     {"views": 3, "top_k": 3, "tail_bits": None, "temperatures": [2.0]}),
    # A tail replays near-full logits: plain KD trains on it, no rest mass stored.
    ({"type": "KD", "temperature": 4}, {"views": 3, "top_k": 3, "tail_bits": 3},
     {"views": 3, "top_k": 3, "tail_bits": 3, "temperatures": None}),
])
def test_a_run_trains_from_cached_augmented_views(tmp_path, term, section, stored):
    rng = np.random.default_rng(0)
    x = rng.random((24, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 24).astype(np.int32)
    raw = {"teacher": "digits_teacher", "student": "digits_student", "epochs": 2,
           "dataset": {"name": "digits", "augment": "cifar", "batch_size": 8},
           "terms": [term], "teacher_cache": section, "output_dir": str(tmp_path / "run")}
    cfg = config.validate(raw, check_files=False)
    teacher = tiny_cnn(16, name="teacher", counter=True)
    results = run_config.run(cfg, train_data=(x, y), test_data=(x, y), teacher_model=teacher,
                             student_model=tiny_cnn(8, name="student"), export=False,
                             backup=False, verbose=0)
    counter = float(teacher.get_layer("counter").count.numpy())
    assert counter == 3.0  # one caching pass (3 batches of 8 × 3 views), none in training
    assert len(results["history"]["kd"]) == 2 and results["history"]["kd"][0] > 0
    cache_dir = tmp_path / "run" / "teacher_cache"
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    assert {key: manifest[key] for key in stored} == stored
    assert os.path.isdir(cache_dir / "part-00000")


def test_teacher_cache_tail_bits_in_run_configs():
    ok = config.validate(_raw(teacher_cache={"views": 4, "top_k": 10, "tail_bits": 3}),
                         check_files=False)  # full-logit KD accepted: the tail is replayed
    assert ok["teacher_cache"]["tail_bits"] == 3
    assert config.validate(_raw(teacher_cache={"views": 4}),
                           check_files=False)["teacher_cache"]["tail_bits"] is None
    for cache_section, message in (
            ({"top_k": 10, "tail_bits": 9}, "teacher_cache.tail_bits: expected an integer >= 1 and <= 8"),
            ({"tail_bits": 3}, "teacher_cache.tail_bits: quantizes the classes outside the top-k")):
        with pytest.raises(config.ConfigError, match=message):
            config.validate(_raw(teacher_cache=cache_section), check_files=False)
