"""`keras-kd distill CONFIG` runs: the digits recipe (recipes/digits_kd.yaml)
trained for 1-2 epochs in tmp_path, logged, exported, never retrained or
overwritten, resumed after an interruption."""

import glob
import json
import os

import keras
import numpy as np
import pytest

from keras_kd.tools import cli
from keras_kd.tools.config import validate as config
from keras_kd.tools.run import runner as run_config
from tests.helpers.paths import ROOT

DIGITS = os.path.join(ROOT, "recipes", "digits_kd.yaml")


def _digits(tmp_path, *extra, name="run"):
    out = tmp_path / name
    return config.load(DIGITS, overrides=[f"output_dir={out}", f"export.path={out}/student",
                                          *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """recipes/digits_kd.yaml for 2 epochs, both export formats."""
    tmp_path = tmp_path_factory.mktemp("digits")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        cfg = _digits(tmp_path, "epochs=2")
        results = run_config.run(cfg, verbose=0)
    finally:
        os.chdir(cwd)
    return cfg, results


def test_digits_recipe_trains_logs_and_exports(finished):
    cfg, results = finished
    out = cfg["output_dir"]
    with open(os.path.join(out, "results.json")) as handle:
        saved = json.load(handle)
    assert saved["test_accuracy"] == results["test_accuracy"] > 0.5
    assert saved["epochs"] == 2 and saved["params"] == 2410
    assert saved["config_hash"] == config.config_hash(cfg)
    assert len(saved["history"]["kd"]) == 2
    assert glob.glob(os.path.join(out, "logs", "train", "events.out.tfevents.*"))
    assert config.load(os.path.join(out, "config.yaml")) == cfg  # the resolved copy
    student = keras.saving.load_model(os.path.join(out, "student.keras"))
    assert student.count_params() == 2410
    assert os.path.isfile(os.path.join(out, "student", "saved_model.pb"))
    assert not os.path.exists(os.path.join(out, "backup"))  # removed after a finished run
    x = np.zeros((1, 8, 8, 1), "float32")
    assert student.predict(x, verbose=0).shape == (1, 10)


def test_finished_run_is_not_retrained_and_exports_are_never_overwritten(
        finished, tmp_path, capsys, in_root):
    cfg, results = finished
    before = os.path.getmtime(os.path.join(cfg["output_dir"], "student.keras"))
    assert run_config.run(cfg, verbose=0) == json.load(
        open(os.path.join(cfg["output_dir"], "results.json")))
    assert "Already finished" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(cfg["output_dir"], "student.keras")) == before
    # Another run that would export onto the finished run's student: refused
    # before any training, with a clean CLI error (exit 2).
    code = cli.main(["distill", DIGITS, "--output-dir", str(tmp_path / "other"),
                     "--set", f"export.path={cfg['export']['path']}", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "already exist" in err and "--overwrite" in err
    assert "Traceback" not in err
    # The same output_dir with a different config: refused too.
    changed = dict(cfg, seed=1)
    with pytest.raises(FileExistsError, match="holds a run of a different config"):
        run_config.run(changed, verbose=0)


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated interruption after epoch 1")


def _student_weights(cfg):
    model = keras.saving.load_model(os.path.join(cfg["output_dir"], "student.keras"))
    return model.get_weights()


def test_rerun_after_an_interruption_resumes(tmp_path, in_root):
    cfg = _digits(tmp_path, "epochs=2", "dataset.shuffle_buffer=0", "export.formats=[keras]")
    with pytest.raises(KeyboardInterrupt):
        run_config.run(cfg, callbacks=[_Interrupt()], verbose=0)
    backup = os.path.join(cfg["output_dir"], "backup")
    with open(os.path.join(backup, "training_metadata.json")) as handle:
        assert json.load(handle)["epoch"] == 1
    assert not os.path.exists(os.path.join(cfg["output_dir"], "results.json"))
    results = run_config.run(cfg, verbose=0)
    assert results["resumed_after_epochs"] == 1
    assert len(results["history"]["kd"]) == 1  # only epoch 2 ran again
    assert not os.path.exists(backup)


@pytest.mark.slow
def test_resumed_run_ends_as_an_uninterrupted_one(tmp_path, in_root):
    """Without shuffling (the pipeline restarts on resume) the resumed run's
    student equals the uninterrupted run's, up to float round-off."""
    cut = _digits(tmp_path, "epochs=2", "dataset.shuffle_buffer=0", "export.formats=[keras]",
                  name="cut")
    with pytest.raises(KeyboardInterrupt):
        run_config.run(cut, callbacks=[_Interrupt()], verbose=0)
    run_config.run(cut, verbose=0)
    whole = _digits(tmp_path, "epochs=2", "dataset.shuffle_buffer=0", "export.formats=[keras]",
                    name="whole")
    run_config.run(whole, verbose=0)
    for a, b in zip(_student_weights(cut), _student_weights(whole)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_null_trains_the_student_alone(tmp_path, in_root):
    cfg = _digits(tmp_path, "teacher=null", "terms=null", "epochs=1",
                  "optimizer={name: sgd, learning_rate: 0.1, momentum: 0.9, "
                  "weight_decay: 5e-4, schedule: {type: piecewise, boundaries_epochs: [1], "
                  "factor: 0.1}}")
    results = run_config.run(cfg, verbose=0)
    assert "kd" not in results["history"] and results["test_accuracy"] > 0.3
    student = keras.saving.load_model(os.path.join(cfg["output_dir"], "student.keras"))
    assert student.name == "digits_student"


def test_module_function_student(tmp_path, in_root):
    (tmp_path / "my_models_kd.py").write_text(
        "import keras\n"
        "def tiny(input_shape, num_classes):\n"
        "    inputs = keras.Input(input_shape)\n"
        "    x = keras.layers.Flatten()(inputs)\n"
        "    return keras.Model(inputs, keras.layers.Dense(num_classes, name='logits')(x),\n"
        "                       name='tiny')\n")
    path = tmp_path / "run.yaml"
    path.write_text(
        f"teacher: {ROOT}/saved_models/digits_teacher.keras\n"
        "student: my_models_kd:tiny\n"
        "dataset: {name: digits, batch_size: 64}\n"
        "terms: [{type: KD, temperature: 4, weight: 0.9,"
        " schedule: {type: linear_warmup, warmup_epochs: 2}}]\n"
        "student_loss_weight: 0.1\n"
        f"epochs: 1\noutput_dir: {tmp_path}/out\n")
    cfg = config.load(path)  # the config's folder is importable
    results = run_config.run(cfg, verbose=0, search_path=[str(tmp_path)])
    assert results["params"] == 64 * 10 + 10
    assert results["history"]["kd_weight"] == [pytest.approx(0.45)]  # warm-up: 1/2 of 0.9 in epoch 1
