"""The same Distiller on TensorFlow, JAX and PyTorch.

Runs in every pass of the suite (`python -m pytest`, then with
`KERAS_BACKEND=jax` and `KERAS_BACKEND=torch`): each in-process test
exercises the backend of its pass. The cross-backend tests start one
subprocess per backend (tests/helpers/scripts/backend_step.py), so they run in the
TensorFlow pass only.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from tests.helpers.models import tiny_cnn
from tests.helpers.paths import ROOT, SCRIPTS

BACKEND = keras.backend.backend()
TIMEOUT = float(os.environ.get("KERAS_KD_TEST_TIMEOUT", "900"))
once_per_suite = pytest.mark.skipif(
    BACKEND != "tensorflow", reason="starts its own subprocess per backend; runs in the TF pass"
)


def _run_step_script(tmp_path, backend, devices=1):
    out = tmp_path / f"{backend}_{devices}.npz"
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("KERAS_BACKEND", None)
    command = [sys.executable, os.path.join(SCRIPTS, "backend_step.py"),
               backend, str(out), str(devices)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


@once_per_suite
def test_tensorflow_jax_and_torch_train_the_same_distiller_to_the_same_numbers(tmp_path):
    # KD + a feature hint through a trainable adapter + AT + DKD, 12 SGD steps
    # with momentum from identical weights and batches.
    runs = {backend: _run_step_script(tmp_path, backend)
            for backend in ("tensorflow", "jax", "torch")}
    tf_run = runs["tensorflow"]
    for backend in ("jax", "torch"):
        run = runs[backend]
        assert sorted(run) == sorted(tf_run), backend
        for key in tf_run:
            if key.startswith(("history_", "evaluate_")):
                np.testing.assert_allclose(run[key], tf_run[key], rtol=2e-5, atol=1e-6,
                                           err_msg=f"{backend}: {key}")
            else:  # weights after 12 steps: conv kernels differ in rounding order
                np.testing.assert_allclose(run[key], tf_run[key], rtol=1e-4, atol=1e-4,
                                           err_msg=f"{backend}: {key}")
    assert tf_run["history_kd"][0] > 0 and tf_run["history_hint"][0] > 0


@once_per_suite
def test_jax_data_parallel_on_two_devices_equals_one_device(tmp_path):
    one = _run_step_script(tmp_path, "jax", devices=1)
    two = _run_step_script(tmp_path, "jax", devices=2)
    assert int(two["devices"]) == 2
    for key in one:
        if key == "devices":
            continue
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-5, err_msg=key)


# ---------------------------------------------------------------------------
# In-process: the backend of this pass.

def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 10, n).astype("int32")


def _counted_distiller(terms, **kwargs):
    teacher = tiny_cnn(width=8, name="teacher")
    student = tiny_cnn(width=4, name="student", counter=True)
    return keras_kd.Distiller(teacher, student, losses=terms, **kwargs), student


@pytest.mark.parametrize("jit_compile", [False, True])
def test_one_student_pass_per_step_with_output_input_and_logit_taps(jit_compile):
    terms = [
        losses.KD(temperature=4.0),
        losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint"),
        losses.FeatureMSE("relu1:input", "relu1:input", adapter="auto", name="pre"),
    ]
    distiller, student = _counted_distiller(terms)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      jit_compile=jit_compile)
    x, y = _data(32)
    history = distiller.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    counter = student.get_layer("counter")
    assert float(keras.ops.convert_to_numpy(counter.count)) == 4.0  # 4 steps, 1 pass each
    assert history["hint"][0] > 0 and history["pre"][0] > 0 and history["kd"][0] > 0
    distiller.evaluate(x, y, batch_size=16, verbose=0)  # 2 steps, student only
    assert float(keras.ops.convert_to_numpy(counter.count)) == 6.0


def test_total_loss_is_the_weighted_sum_of_the_logged_parts():
    terms = [losses.KD(temperature=2.0, weight=0.7), losses.DKD(warmup_epochs=0, weight=0.3)]
    distiller, _ = _counted_distiller(terms, student_loss_weight=0.5)
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _data(32)
    h = distiller.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    for e in range(2):
        expected = 0.5 * h["student_loss"][e] + 0.7 * h["kd"][e] + 0.3 * h["dkd"][e]
        assert h["loss"][e] == pytest.approx(expected, rel=1e-5)


def test_stages_and_per_step_schedules_take_effect_during_the_epoch():
    hint = losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")
    kd = losses.KD(temperature=4.0)
    distiller, _ = _counted_distiller([hint, kd])
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    stages = keras_kd.regimes.Stages([
        keras_kd.regimes.Stage(1, {"hint": 1.0, "kd": 0.0, "student_loss": 0.0}, "hints"),
        keras_kd.regimes.Stage(1, {"hint": 0.0, "kd": 1.0, "student_loss": 1.0}, "kd"),
    ])
    x, y = _data(32)
    h = distiller.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[stages]).history
    assert h["loss"][0] == pytest.approx(h["hint"][0], rel=1e-5)  # stage 1: hint alone
    assert h["loss"][1] == pytest.approx(h["kd"][1] + h["student_loss"][1], rel=1e-5)
    assert h["stage"] == [0.0, 1.0] and h["hint_weight"] == [1.0, 0.0]
    # A per-step schedule switching KD off from the second step of the
    # epoch: on JAX the weight lives in fit's state, so this checks that the
    # assignment reaches the following steps.
    kd.weight = 1.0
    distiller.student_loss_weight = 0.0
    hint.weight = 0.0
    scheduler = keras_kd.regimes.schedules.LossWeightScheduler(
        {"kd": lambda epoch, step=None: 1.0 if step == 0 else 0.0}, per_step=True)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(logs["loss"]))

    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[scheduler, Record()])
    # The running mean of the loss: step 0 counts KD, the three others add 0.
    assert seen[0] > 0
    for k in range(1, 4):
        assert seen[k] == pytest.approx(seen[0] / (k + 1), rel=1e-5)


def test_ensemble_and_merged_teachers_train():
    x, y = _data(32)
    a, b = tiny_cnn(8, name="ta"), tiny_cnn(8, name="tb")
    ensemble = keras_kd.teachers.Ensemble([a, b], temperature=4.0)
    student = tiny_cnn(4, name="student")
    terms = [losses.KD(temperature=4.0), losses.FeatureMSE("ta/relu2", "relu2", adapter="auto")]
    d = keras_kd.Distiller(ensemble, student, losses=terms)
    h = d.compile(optimizer="adam", loss="sparse_categorical_crossentropy").fit(
        x, y, batch_size=8, epochs=1, verbose=0).history
    assert h["kd"][0] > 0 and h["feature_mse"][0] > 0
    low, high = tiny_cnn(8, classes=5, name="low"), tiny_cnn(8, classes=5, name="high")
    merged = keras_kd.teachers.Merged({low: [0, 1, 2, 3, 4], high: [5, 6, 7, 8, 9]})
    d = keras_kd.Distiller(merged, tiny_cnn(4, name="s2"), losses=[losses.MergedKD()])
    h = d.compile(optimizer="adam").fit(x, batch_size=8, epochs=1, verbose=0).history
    assert h["merged_kd"][0] > 0


def test_unlabeled_samples_get_no_student_loss():
    terms = [losses.KD(temperature=4.0)]
    distiller, student = _counted_distiller(terms)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    x, y = _data(16)
    y_semi = y.copy()
    y_semi[8:] = -1
    h = distiller.fit(x, y_semi, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    # The student as the step saw it: batch statistics of all 16 samples.
    logits = keras.ops.convert_to_numpy(student(x, training=True))[:8].astype("float64")
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    expected = -log_p[np.arange(8), y[:8]].mean()
    assert h["student_loss"][0] == pytest.approx(expected, rel=1e-4)


def test_mixed_precision_trains_close_to_float32():
    x, y = _data(32)
    results = []
    for policy in ("float32", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(3)
        distiller, _ = _counted_distiller([losses.KD(temperature=4.0)])
        distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        h = distiller.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False).history
        results.append(h["loss"][0])
    keras.config.set_dtype_policy("float32")
    assert np.isfinite(results[1])
    assert results[1] == pytest.approx(results[0], rel=2e-2)


@pytest.mark.every_backend  # TensorFlow only loads the exported SavedModel
def test_save_load_and_export_on_this_backend(tmp_path):
    x, y = _data(16)
    terms = [losses.KD(), losses.FeatureMSE("relu2", "relu2", adapter="auto")]
    distiller = keras_kd.Distiller(tiny_cnn(8, name="t"), tiny_cnn(4, name="s"), losses=terms)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "d.keras"
    distiller.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), distiller.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    student_path = distiller.export_student(tmp_path / "student.keras")
    student = keras.saving.load_model(student_path)
    np.testing.assert_allclose(student.predict(x, verbose=0), distiller.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    if BACKEND == "torch":  # Keras exports a SavedModel from torch through torch_xla
        with pytest.raises(ValueError, match="SavedModel export needs the TensorFlow or JAX "
                           "backend.*KERAS_BACKEND=tensorflow"):
            distiller.export_student(tmp_path / "serving")
        assert not (tmp_path / "serving").exists()
        return
    saved = distiller.export_student(tmp_path / "serving")
    import tensorflow as tf

    loaded = tf.saved_model.load(saved)  # kept: .serve needs its variables alive
    served = loaded.serve(tf.constant(x))
    np.testing.assert_allclose(np.asarray(served), distiller.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="the other backends' refusals")
def test_tensorflow_only_features_say_so_on_jax_and_torch(tmp_path):
    distiller, _ = _counted_distiller([losses.KD()])
    with pytest.raises(ValueError, match="TFLite export needs the TensorFlow backend"):
        distiller.export_student(tmp_path / "s.tflite")
    with pytest.raises(RuntimeError, match="TensorFlow backend"):
        keras_kd.distribute.patch_keras_multiworker()
