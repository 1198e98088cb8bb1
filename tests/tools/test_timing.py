"""keras_kd.tools.timing: latency measured after warm-up, for every model.

No wall-clock assertions: a stand-in clock and stand-in forward passes show
what is called, and when."""

import types

import numpy as np
import pytest

from keras_kd.tools import timing


class _Machine:
    """Stand-in forward passes on a stand-in clock: a call costs 100 units
    while the process is cold (its first `cold` calls, any model), 1 after."""

    def __init__(self, cold):
        self.now, self.calls, self.cold, self.log = 0.0, 0, cold, []

    def perf_counter(self):
        self.log.append("clock")
        return self.now

    def forward(self, name):
        def call(batch):
            self.calls += 1
            self.log.append(name)
            self.now += 100.0 if self.calls <= self.cold else 1.0
            return np.zeros((len(batch), 2), np.float32)
        return call


@pytest.fixture
def machine(monkeypatch):
    made = _Machine(cold=8)
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=made.perf_counter))
    monkeypatch.setattr(timing, "compiled_forward", lambda model: made.forward(model))
    return made


def test_every_model_is_warmed_up_before_any_is_timed(machine):
    timing.latencies_ms({"a": "a", "b": "b"}, np.zeros((4, 3), np.float32), repeats=6, warmup=5)
    first_timed = machine.log.index("clock")
    assert machine.log[:first_timed] == ["a"] * 5 + ["b"] * 5  # the warm-up calls, untimed
    timed = [entry for entry in machine.log[first_timed:] if entry != "clock"]
    assert timed == ["a", "b"] * 6  # then round after round


def test_two_identical_models_measured_one_after_the_other_get_the_same_latency(machine):
    # The process is cold for 8 calls: the first model measured would have
    # paid for them (100 units per call) had it not been warmed up first.
    got = timing.latencies_ms({"scratch": "scratch", "distilled": "distilled"},
                              np.zeros((4, 3), np.float32), repeats=5, warmup=5)
    assert got == {"scratch": 1000.0, "distilled": 1000.0}  # 1 unit per call, in ms
    assert timing.latency_ms("one", np.zeros((4, 3), np.float32), repeats=3) == 1000.0


def test_warmup_must_be_at_least_one_call():
    with pytest.raises(ValueError, match="warmup must be an integer >= 1"):
        timing.latencies_ms({}, np.zeros((1, 1), np.float32), warmup=0)


def test_a_real_keras_model_is_timed_through_its_compiled_forward():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    got = timing.latencies_ms({"m": model, "n": model}, np.zeros((4, 3), np.float32),
                              repeats=2, warmup=1)
    assert set(got) == {"m", "n"} and all(np.isfinite(v) and v >= 0 for v in got.values())
