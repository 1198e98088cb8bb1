"""Loss-weight schedules and the LossWeightScheduler callback."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.regimes import schedules
from tests.helpers.models import tiny_cnn


# ----------------------------------------------------------------------
# Schedules.
def test_constant():
    assert [schedules.Constant(0.5)(e) for e in range(3)] == [0.5, 0.5, 0.5]


def test_linear_warmup_values_and_hold_past_the_end():
    warm = schedules.LinearWarmup(2.0, 4)
    assert [warm(e) for e in range(7)] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0])
    assert warm(10_000) == 2.0
    with_start = schedules.LinearWarmup(1.0, 2, start=0.5)
    assert [with_start(e) for e in range(3)] == pytest.approx([0.75, 1.0, 1.0])
    # Fractional epochs (per step) ramp smoothly.
    assert warm(0.5) == pytest.approx(0.75)
    assert schedules.LinearWarmup(3.0, 0)(0) == 3.0
    # A decreasing ramp is fine too.
    assert [schedules.LinearWarmup(0.0, 2, start=1.0)(e) for e in range(3)] == [0.5, 0.0, 0.0]


def test_piecewise_stages_and_hold_past_the_end():
    stages = schedules.Piecewise([2, 4], [1.0, 0.5, 0.0])
    assert [stages(e) for e in range(7)] == [1.0, 1.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    assert stages(3.99) == 0.5
    assert schedules.Piecewise([], [0.3])(100) == 0.3


@pytest.mark.parametrize(
    "make",
    [
        lambda: schedules.Constant(-1.0),
        lambda: schedules.Constant(float("nan")),
        lambda: schedules.LinearWarmup(-1.0, 3),
        lambda: schedules.LinearWarmup(1.0, -3),
        lambda: schedules.LinearWarmup(1.0, 3, start=-0.1),
        lambda: schedules.Piecewise([2], [1.0, -0.5]),
        lambda: schedules.Piecewise([3, 2], [1.0, 0.5, 0.0]),
        lambda: schedules.Piecewise([2, 2], [1.0, 0.5, 0.0]),
        lambda: schedules.Piecewise([2], [1.0]),
        lambda: schedules.Piecewise([-1], [1.0, 0.0]),
    ],
)
def test_bad_schedules_raise(make):
    with pytest.raises(ValueError):
        make()


def test_schedules_serialize():
    for schedule in (
        schedules.Constant(0.25),
        schedules.LinearWarmup(2.0, 5, start=0.5),
        schedules.Piecewise([3, 6], [1.0, 0.5, 0.1]),
    ):
        config = keras.saving.serialize_keras_object(schedule)
        restored = keras.saving.deserialize_keras_object(config)
        assert type(restored) is type(schedule)
        assert restored.get_config() == schedule.get_config()
        assert [restored(e) for e in range(8)] == [schedule(e) for e in range(8)]
        assert type(schedules.get(config)) is type(schedule)
    assert isinstance(schedules.get(0.5), schedules.Constant)
    assert "LinearWarmup(target=2.0" in repr(schedules.LinearWarmup(2.0, 5))


# ----------------------------------------------------------------------
# The callback in a real Distiller.
class TracedKD(losses.KD):
    """KD that counts how often its call is traced (Python side effect)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.traces = 0

    def call(self, teacher, student, labels=None, training=None):
        self.traces += 1
        return super().call(teacher, student, labels, training)


def make(terms, student_loss_weight=1.0, jit_compile=False):
    distiller = keras_kd.Distiller(
        tiny_cnn(8, name="teacher"),
        tiny_cnn(4, name="student"),
        losses=terms,
        student_loss_weight=student_loss_weight,
    )
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    return distiller


class Recorder(keras.callbacks.Callback):
    """Records the weights and trace counts seen by each epoch / batch."""

    def __init__(self, term, per_batch=False):
        super().__init__()
        self.term = term
        self.per_batch = per_batch
        self.weights, self.traces, self.student = [], [], []

    def _record(self):
        self.weights.append(self.term.weight)
        self.student.append(self.model.student_loss_weight)
        self.traces.append(self.term.traces)

    def on_train_batch_end(self, batch, logs=None):
        if self.per_batch:
            self._record()

    def on_epoch_end(self, epoch, logs=None):
        if not self.per_batch:
            self._record()


@pytest.mark.tensorflow_only  # counts tf.function traces
@pytest.mark.parametrize("jit_compile", [False, True])
def test_weights_change_per_epoch_without_retracing(digits_batch, jit_compile):
    x, y = digits_batch
    kd = TracedKD(temperature=2.0, name="kd")
    distiller = make([kd], jit_compile=jit_compile)
    scheduler = schedules.LossWeightScheduler(
        {"kd": schedules.LinearWarmup(1.0, 3), "student_loss": schedules.Piecewise([2], [1.0, 0.0])}
    )
    recorder = Recorder(kd)
    history = distiller.fit(
        x[:16], y[:16], batch_size=8, epochs=4, verbose=0, callbacks=[scheduler, recorder]
    ).history
    assert recorder.weights == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert recorder.student == [1.0, 1.0, 0.0, 0.0]
    assert history["kd_weight"] == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert history["student_loss_weight"] == [1.0, 1.0, 0.0, 0.0]
    # Traced during the first epoch only: weight changes never retrace.
    assert recorder.traces[0] >= 1
    assert recorder.traces == [recorder.traces[0]] * 4
    # The objective follows the weights: total = w_s·student + w_kd·kd.
    # History holds epoch means; with student weight 0 at the last epoch the
    # total is exactly the kd metric.
    assert history["loss"][-1] == pytest.approx(history["kd"][-1], rel=1e-5)


# Reads term.weight in a callback in the middle of an epoch, where Keras's
# JAX trainer keeps the variables' values in its own state (on JAX,
# tests/backends/test_tensorflow_and_jax.py checks per-step schedules through
# the losses).
@pytest.mark.tensorflow_only
def test_per_step_schedule_changes_weights_every_batch(digits_batch):
    x, y = digits_batch
    kd = TracedKD(temperature=2.0, name="kd")
    distiller = make([kd])
    seen_steps = []

    def ramp(epoch, step=None):
        seen_steps.append(step)
        return epoch  # fractional epoch: 0, 0.5, 1, 1.5

    scheduler = schedules.LossWeightScheduler({kd: ramp}, per_step=True)
    recorder = Recorder(kd, per_batch=True)
    history = distiller.fit(
        x[:16], y[:16], batch_size=8, epochs=2, verbose=0, callbacks=[scheduler, recorder]
    ).history
    assert recorder.weights == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert seen_steps == [0, 1, 2, 3]
    assert recorder.traces == [recorder.traces[0]] * 4
    assert history["kd_weight"] == pytest.approx([0.5, 1.5])


def test_default_schedules_are_picked_up_and_logged_to_tensorboard(digits_batch, tmp_path):
    x, y = digits_batch
    dkd = losses.DKD(warmup_epochs=4, weight=2.0)
    kd = losses.KD(name="kd")
    distiller = make([dkd, kd])
    callbacks = schedules.with_default_schedules(
        distiller, [keras.callbacks.TensorBoard(str(tmp_path))]
    )
    assert isinstance(callbacks[0], schedules.LossWeightScheduler)
    history = distiller.fit(x[:16], y[:16], batch_size=16, epochs=2, verbose=0, callbacks=callbacks).history
    assert history["dkd_weight"] == pytest.approx([0.5, 1.0])
    assert "kd_weight" not in history  # no schedule, not logged
    assert dkd.target_weight == 2.0 and dkd.weight == pytest.approx(1.0)
    tags = set()
    for path in glob.glob(os.path.join(str(tmp_path), "train", "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert "epoch_dkd_weight" in tags
    # An explicit schedule overrides the default one.
    scheduler = schedules.LossWeightScheduler({"dkd": 0.25})
    history = distiller.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0, callbacks=[scheduler]).history
    assert history["dkd_weight"] == [0.25]
    # use_defaults=False leaves the terms alone.
    scheduler = schedules.LossWeightScheduler(use_defaults=False)
    history = distiller.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0, callbacks=[scheduler]).history
    assert "dkd_weight" not in history and dkd.weight == 0.25


def test_with_default_schedules_leaves_other_callbacks_alone():
    distiller = make([losses.KD()])
    assert schedules.with_default_schedules(distiller, None) is None
    distiller = make([losses.DKD()])
    existing = schedules.LossWeightScheduler()
    assert schedules.with_default_schedules(distiller, [existing]) == [existing]
    assert len(schedules.with_default_schedules(distiller, None)) == 1


def test_resumed_training_continues_the_schedule(digits_batch):
    x, y = digits_batch
    kd = TracedKD(name="kd")
    distiller = make([kd])
    scheduler = schedules.LossWeightScheduler({"kd": schedules.LinearWarmup(1.0, 4)})
    history = distiller.fit(
        x[:8], y[:8], batch_size=8, epochs=4, initial_epoch=2, verbose=0, callbacks=[scheduler]
    ).history
    assert history["kd_weight"] == pytest.approx([0.75, 1.0])


# ----------------------------------------------------------------------
# Errors.
def test_unknown_term_name_lists_the_names(digits_batch):
    x, y = digits_batch
    distiller = make([losses.KD(name="kd"), losses.NKD(name="nkd")])
    scheduler = schedules.LossWeightScheduler({"hint": 1.0})
    with pytest.raises(ValueError, match=r"no term named 'hint'.*\['kd', 'nkd'\].*student_loss"):
        distiller.fit(x[:8], y[:8], epochs=1, verbose=0, callbacks=[scheduler])


def test_foreign_term_object_and_duplicate_targets_raise(digits_batch):
    x, y = digits_batch
    kd = losses.KD(name="kd")
    distiller = make([kd])
    with pytest.raises(ValueError, match="not one of the distiller's terms"):
        distiller.fit(x[:8], y[:8], epochs=1, verbose=0,
                      callbacks=[schedules.LossWeightScheduler({losses.KD(name="other"): 1.0})])
    with pytest.raises(ValueError, match="two schedules for 'kd'"):
        distiller.fit(x[:8], y[:8], epochs=1, verbose=0,
                      callbacks=[schedules.LossWeightScheduler({"kd": 1.0, kd: 0.5})])


def test_negative_values_are_refused(digits_batch):
    x, y = digits_batch
    with pytest.raises(ValueError, match=">= 0"):
        schedules.LossWeightScheduler({"kd": -1.0})
    distiller = make([losses.KD(name="kd")])
    scheduler = schedules.LossWeightScheduler({"kd": lambda epoch, step=None: -0.5})
    with pytest.raises(ValueError, match="schedule of 'kd' at epoch 0"):
        distiller.fit(x[:8], y[:8], epochs=1, verbose=0, callbacks=[scheduler])


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="dict"):
        schedules.LossWeightScheduler([("kd", 1.0)])
    with pytest.raises(TypeError, match="keys must be"):
        schedules.LossWeightScheduler({3: 1.0})
    with pytest.raises(TypeError, match="schedule"):
        schedules.LossWeightScheduler({"kd": "warmup"})
    model = tiny_cnn(4)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="Distiller"):
        model.fit(np.zeros((2, 8, 8, 1)), np.zeros((2, 10)), verbose=0,
                  callbacks=[schedules.LossWeightScheduler({"kd": 1.0})])


def test_docstring_examples_run():
    from tests.helpers.doctests import assert_doctests

    from keras_kd.regimes import schedules as weight_schedules

    # The schedules live in weight_schedules.py (schedules.py re-exports them).
    assert_doctests(weight_schedules, {"Constant": 1, "LinearWarmup": 1, "Piecewise": 1})
