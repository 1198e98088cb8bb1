"""`keras-kd demo` reads well: one progress bar per student, not one per epoch."""

import re

import keras
import numpy as np
import pytest

from keras_kd.tools import cli
from keras_kd.tools import demo
from keras_kd.tools.progress import EpochProgressBar

BAR = "━"


def _bar_lines(out):
    return [line for line in out.split("\n") if BAR in line]


def _last_state(line):
    """What a dynamic bar shows last: the text after its last carriage return."""
    return line.rsplit("\r", 1)[-1]


def test_one_bar_over_all_epochs_with_the_last_epoch_values(capsys):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=8, epochs=6, verbose=0,
                        callbacks=[EpochProgressBar(["loss", "accuracy", "absent"])]).history
    out = capsys.readouterr().out
    (line,) = _bar_lines(out)
    last = _last_state(line)
    assert "6/6" in last
    # The latest epoch's values, not averages over the epochs.
    assert f"loss: {history['loss'][-1]:.4f}" in last
    assert f"accuracy: {history['accuracy'][-1]:.4f}" in last
    assert "absent" not in out
    assert "Epoch" not in out


def test_verbosity_levels():
    assert demo._fit_verbosity(0, ["loss"]) == (0, [])
    assert demo._fit_verbosity(2, ["loss"]) == (2, [])
    fit_verbose, (bar,) = demo._fit_verbosity(1, ["loss"])
    assert fit_verbose == 0 and isinstance(bar, EpochProgressBar)
    with pytest.raises(ValueError, match="verbose must be 0"):
        demo._fit_verbosity(3, [])


def test_cli_maps_quiet_and_verbose(monkeypatch):
    seen = []
    monkeypatch.setattr(demo, "run", lambda **kwargs: seen.append(kwargs["verbose"]))
    for flags, verbose in (([], 1), (["--quiet"], 0), (["--verbose"], 2)):
        assert cli.main(["demo", *flags]) == 0
        assert seen.pop() == verbose
    with pytest.raises(SystemExit):
        cli.main(["demo", "--quiet", "--verbose"])


@pytest.mark.slow
def test_demo_prints_one_bar_per_student_then_the_table(tmp_path, capsys):
    demo.run(epochs=3, output_dir=str(tmp_path), verbose=1)
    out = capsys.readouterr().out
    bars = _bar_lines(out)
    assert len(bars) == 2, out  # scratch, distilled
    assert all("3/3" in _last_state(line) for line in bars)
    assert "kd:" in _last_state(bars[1]) and "kd:" not in _last_state(bars[0])
    assert not re.search(r"Epoch \d+/3", out)
    lines = out.rstrip("\n").split("\n")
    assert len(lines) < 25, out  # headings, two bars, the table and where things are
    table = [line for line in lines if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in table] == [
        "model", "teacher", "scratch student", "distilled student"]
    assert out.index(bars[1]) < out.index("| teacher |")
