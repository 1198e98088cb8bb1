"""Validation in `keras-kd distill` runs: `dataset.validation_split` carves a
validation set out of the TRAINING split (fixed by the run's seed), its
metrics are logged every epoch, and the run's settings go to TensorBoard's
HParams dashboard."""

import collections
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_kd import datasets
from keras_kd.tools import cli
from keras_kd.tools.config import validate as config
from keras_kd.tools.run import runner
from keras_kd.tools.run.data import run_sources
from tests.helpers.paths import ROOT

DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def _digits(tmp_path, *extra):
    out = tmp_path / "run"
    return config.load(DIGITS, overrides=[f"output_dir={out}", f"export.path={out}/student",
                                          *extra])


def _samples(source):
    """Counter of (image bytes, label) of arrays or an unbatched dataset."""
    if isinstance(source, tuple):
        pairs = zip(source[0], source[1])
    else:
        pairs = source.as_numpy_iterator()
    return collections.Counter((np.asarray(x, np.float32).tobytes(), int(y)) for x, y in pairs)


def _expected_validation_size(y, fraction):
    return sum(max(1, int(round(fraction * n))) for n in np.bincount(y) if n)


# ----------------------------------------------------------------------------
# The carve.

@pytest.mark.parametrize("as_arrays", [False, True], ids=["dataset", "arrays"])
def test_the_carved_split_is_disjoint_from_training_and_reproducible_by_seed(tmp_path, as_arrays):
    x, y = datasets.load("digits", "train", as_numpy=True)
    x_test, y_test = datasets.load("digits", "test", as_numpy=True)
    given = (x, y) if as_arrays else None  # None: the configured dataset, a tf.data pipeline
    cfg = _digits(tmp_path, "dataset.validation_split=0.2", "seed=3")
    train, val, _ = run_sources(cfg, train_data=given)
    train_set, val_set = _samples(train), _samples(val)
    # A partition of the training split: every training sample in exactly one part.
    assert train_set + val_set == _samples((x, y))
    assert sum(val_set.values()) == _expected_validation_size(y, 0.2) == 287
    assert not set(val_set) & set(_samples((x_test, y_test)))  # never the test split
    labels = np.array([label for _, label in val_set.elements()])
    assert np.bincount(labels, minlength=10).tolist() == [
        max(1, int(round(0.2 * n))) for n in np.bincount(y)]  # stratified
    # The same seed: the same carve; another seed: another one.
    _, again, _ = run_sources(cfg, train_data=given)
    assert _samples(again) == val_set
    _, other, _ = run_sources(dict(cfg, seed=4), train_data=given)
    assert _samples(other) != val_set
    if not as_arrays:  # Keras still knows an epoch's length
        assert int(train.cardinality()) == len(y) - 287 and int(val.cardinality()) == 287


def test_without_validation_the_training_split_is_whole(tmp_path):
    cfg = _digits(tmp_path)
    train, val, _ = run_sources(cfg)
    assert val is None
    assert _samples(train) == _samples(datasets.load("digits", "train", as_numpy=True))


# ----------------------------------------------------------------------------
# The config.

@pytest.mark.parametrize("value", ["0", "1", "-0.1", "x", "true"])
def test_a_bad_fraction_is_a_config_error_naming_the_key_at_validate_only(value, capsys, in_root):
    code = cli.main(["distill", DIGITS, "--validate-only",
                     "--set", f"dataset.validation_split={value}"])
    err = capsys.readouterr().err
    assert code == 2, err
    shown = {"0": "0 (int)", "1": "1 (int)", "-0.1": "-0.1 (float)", "x": "'x' (str)",
             "true": "True (bool)"}[value]
    assert (f"dataset.validation_split: expected a fraction of the training split, > 0 and "
            f"< 1 (e.g. 0.1), got {shown}") in err
    assert "Traceback" not in err


def test_a_good_fraction_validates_and_defaults_to_none(capsys, in_root):
    assert cli.main(["distill", DIGITS, "--validate-only",
                     "--set", "dataset.validation_split=0.2"]) == 0
    assert config.load(DIGITS)["dataset"]["validation_split"] is None
    assert config.load(DIGITS)["dataset"]["validation"] is None


@pytest.mark.parametrize("changes, message", [
    ({"validation": "test"}, "'test' is the test split"),
    ({"validation": "train"}, "'train' is the training split"),
    ({"validation": "all"}, "'digits' has no validation split"),
    ({"validation": "validation", "validation_split": 0.1}, "give either 'validation'"),
    ({"validation": 3}, "expected a non-empty string"),
])
def test_a_named_validation_split_is_checked(changes, message):
    data = {"teacher": None, "student": "digits_student", "epochs": 1,
            "dataset": {"name": "digits", **changes}}
    with pytest.raises(config.ConfigError) as info:
        config.validate(data)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("dataset.validation: ")
    assert message in info.value.problems[0]


def test_a_named_validation_split_is_loaded_by_name(tmp_path, monkeypatch):
    """`dataset.validation: NAME` reads that split of the dataset (TFDS names
    have them; validation checks the name in TFDS's registry, so a real one);
    the training split stays whole."""
    cfg = config.validate({"teacher": None, "student": "digits_student", "epochs": 1,
                           "dataset": {"name": "oxford_flowers102", "validation": "validation"},
                           "output_dir": str(tmp_path)})
    asked = []

    def load(name, split, data_dir=None):
        asked.append((name, split))
        return (np.full((4, 8, 8, 1), len(asked), np.float32), np.arange(4, dtype=np.int32))

    monkeypatch.setattr(datasets, "load", load)
    train, val, test = run_sources(cfg)
    assert asked == [("oxford_flowers102", "train"), ("oxford_flowers102", "test"),
                     ("oxford_flowers102", "validation")]
    assert float(val[0][0, 0, 0, 0]) == 3.0 and len(train[1]) == 4


# ----------------------------------------------------------------------------
# A run: validation metrics every epoch, the settings in HParams.

def _hparams(log_dir):
    """{name: value} of the HParams session summary in log_dir's own event file."""
    from tensorboard.plugins.hparams import metadata

    found = []
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data
                if plugin.plugin_name != metadata.PLUGIN_NAME:
                    continue
                if value.tag != metadata.SESSION_START_INFO_TAG:
                    continue
                info = metadata.parse_session_start_info_plugin_data(plugin.content)
                found.append({k: getattr(v, v.WhichOneof("kind"))
                              for k, v in info.hparams.items()})
    return found


def _scalar_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_a_run_with_validation_split_logs_val_metrics_every_epoch_and_its_hparams(
        tmp_path, in_root):
    cfg = _digits(tmp_path, "dataset.validation_split=0.2", "epochs=2")
    results = runner.run(cfg, steps_per_epoch=3, export=False, verbose=0)
    out = cfg["output_dir"]
    with open(os.path.join(out, "results.json")) as handle:
        saved = json.load(handle)
    history = saved["history"]
    for key in ("val_loss", "val_accuracy", "val_student_loss"):
        assert len(history[key]) == 2, key  # one value per epoch
    assert all(0.0 <= a <= 1.0 for a in history["val_accuracy"])
    assert saved["validation_examples"] == results["validation_examples"] == 287
    # The validation accuracy is the student's on the carved samples, not on the test split.
    assert "test_accuracy" in saved
    logs = os.path.join(out, "logs")
    assert {"epoch_accuracy", "epoch_loss"} <= _scalar_tags(os.path.join(logs, "validation"))
    (hparams,) = _hparams(logs)
    assert hparams["dataset.validation_split"] == pytest.approx(0.2)
    assert hparams["terms[0].temperature"] == pytest.approx(4.0)
    assert hparams["terms[0].type"] == "KD"
    assert hparams["optimizer.learning_rate"] == pytest.approx(0.003)
    assert hparams["student"] == "digits_student" and hparams["epochs"] == 2
    assert hparams["config_hash"] == saved["config_hash"]
    assert "output_dir" not in hparams and not any(k.startswith("export") for k in hparams)


def test_a_resumed_run_writes_its_hparams_once(tmp_path):
    from keras_kd.tools.run.hparams import write_hparams

    cfg = {"epochs": 2, "seed": 0, "dataset": {"name": "digits", "normalize": None},
           "terms": [{"type": "KD", "temperature": 4}], "output_dir": "x"}
    log_dir = str(tmp_path / "logs")
    write_hparams(log_dir, cfg, "abc")
    write_hparams(log_dir, cfg, "abc")  # the same run, resumed
    assert _hparams(log_dir) == [{"epochs": 2, "seed": 0, "dataset.name": "digits",
                                  "terms[0].type": "KD", "terms[0].temperature": 4,
                                  "config_hash": "abc"}]


def test_a_cached_run_caches_only_the_carved_training_part(tmp_path):
    """With `teacher_cache:`, the cache holds the training part only; the
    validation part is scored every epoch with the live teacher."""
    from keras_kd.teachers.caching import store
    from tests.helpers.models import tiny_cnn

    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8, 1), dtype=np.float32)
    y = np.repeat(np.arange(10, dtype=np.int32), 4)
    raw = {"teacher": "digits_teacher", "student": "digits_student", "epochs": 2,
           "dataset": {"name": "digits", "batch_size": 8, "validation_split": 0.25},
           "terms": [{"type": "KD", "temperature": 4}], "teacher_cache": {},
           "output_dir": str(tmp_path / "run")}
    cfg = config.validate(raw, check_files=False)
    results = runner.run(cfg, train_data=(x, y), test_data=(x, y),
                         teacher_model=tiny_cnn(16, name="teacher"),
                         student_model=tiny_cnn(8, name="student"), export=False,
                         backup=False, verbose=0)
    complete = store.read_json(str(tmp_path / "run" / "teacher_cache" / store.COMPLETE))
    assert complete["num_samples"] == 30  # 40 - one of each of the 10 classes
    assert results["validation_examples"] == 10
    assert len(results["history"]["val_accuracy"]) == 2
