"""keras_kd.tools.progress.EpochProgressBar: one bar over a fit's epochs."""

import re
import types

import keras.src.utils.progbar as keras_progbar

from keras_kd.tools.progress import EpochProgressBar


class _Clock:
    """Stands in for the `time` module of Keras's Progbar: set by the test."""

    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now


def _rates(out):
    """The 'N<unit>/epoch' figures a dynamic bar drew, in order."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    return re.findall(r"(\d+)(s|ms|us)/epoch", plain)


def test_the_first_epoch_shows_its_real_duration(monkeypatch, capsys):
    clock = _Clock(1000.0)
    monkeypatch.setattr(keras_progbar, "time", types.SimpleNamespace(time=clock.time))
    bar = EpochProgressBar(["loss"])
    bar.set_params({"epochs": 3, "verbose": 0, "steps": 4})
    bar.on_train_begin()
    clock.now += 7.0  # the first epoch (tracing included) takes 7 s
    bar.on_epoch_end(0, {"loss": 1.0})
    first = _rates(capsys.readouterr().out)
    assert first == [("7", "s")]  # was "0s/epoch" (11us): the bar was made at the epoch's end
    clock.now += 2.0  # later epochs: 2 s each, the first one left out of the rate
    bar.on_epoch_end(1, {"loss": 0.5})
    clock.now += 2.0
    bar.on_epoch_end(2, {"loss": 0.25})
    bar.on_train_end()
    assert _rates(capsys.readouterr().out)[-1] == ("2", "s")
