"""The bench's training runs: logit methods read the teacher cache built once
and match the live run."""

import pytest

from keras_kd.tools.bench import command as bench


def test_logit_methods_read_the_cached_teacher_and_match_the_live_run(tmp_path, small_digits):
    from keras_kd import zoo
    from keras_kd.tools.bench import train as bench_train

    teacher = zoo.get("digits_teacher", input_shape=(8, 8, 1), num_classes=10)
    (x, y), _ = small_digits
    cache = bench_train.logit_cache(teacher, x, y, batch_size=50)
    assert cache.num_samples == len(y)
    settings = dict(epochs=1, batch_size=32, learning_rate=1e-3, temperature=4.0)
    pair = bench.PAIRS["digits-cnn"]
    rows = {}
    for source in ("cache", "live"):
        row = bench_train.train_one(
            "kd", pair.student, 0, teacher, pair, small_digits, settings, str(tmp_path), 0,
            cache=cache if source == "cache" else None)
        assert row["teacher_source"] == source
        rows[source] = row
    # Same order (the same seeded shuffle), same logits: the same student.
    assert rows["cache"]["accuracy"] == pytest.approx(rows["live"]["accuracy"], abs=1 / 64)
    # Feature methods never read the cache.
    fitnet = bench_train.train_one("fitnet", pair.student, 0, teacher, pair, small_digits,
                                   settings, str(tmp_path), 0, cache=cache)
    assert fitnet["teacher_source"] == "live"
    with pytest.raises(ValueError, match="cache holds 100 samples but the run trains on 192"):
        small = bench_train.logit_cache(teacher, x[:100], y[:100])
        bench_train.train_one("kd", pair.student, 0, teacher, pair, small_digits, settings,
                              str(tmp_path), 0, cache=small)
