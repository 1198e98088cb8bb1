"""The on-disk teacher cache: written once, fingerprinted teacher and data,
resumable, corruption named, safe to share between two processes."""

import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_kd
import keras_kd.atomic

from keras_kd.teachers.caching import store as cache_store
from keras_kd.teachers.caching import digest as teacher_digest
from keras_kd.teachers.caching.teacher_cache import build, cache, crop_flip
from tests.helpers.models import tiny_cnn
from tests.helpers.paths import ROOT, SCRIPTS

SCRIPT = os.path.join(SCRIPTS, "cache_share.py")
TIMEOUT = float(os.environ.get("KERAS_KD_SUBPROCESS_TIMEOUT", "900"))


def _data(x, y, batch=8):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _snapshot(path):
    """{relative file: sha256} of every file under path."""
    out = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                out[os.path.relpath(full, path)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _logits(cached):
    return np.concatenate([b[-1]["logits"].numpy() for b in cached])


def test_another_teacher_or_dataset_is_refused_and_files_stay_byte_identical(digits_batch, tmp_path):
    x, y = digits_batch
    path = str(tmp_path / "cache")
    teacher = tiny_cnn(16, name="teacher")
    cache(teacher, _data(x, y), path=path, part_size=16)
    before = _snapshot(path)
    assert {"manifest.json", "complete.json"} <= set(before) and len(before) > 4
    other = tiny_cnn(16, name="teacher")  # same architecture, other weights
    with pytest.raises(ValueError, match="another teacher or settings: the teacher's weights"):
        cache(other, _data(x, y), path=path)
    wider = tiny_cnn(32, name="teacher")
    with pytest.raises(ValueError, match="the teacher's architecture"):
        cache(wider, _data(x, y), path=path)
    with pytest.raises(ValueError, match="the augment function"):
        cache(teacher, _data(x, y), path=path, augment=crop_flip)
    flipped, permuted, changed = x[:, :, ::-1], x.copy(), x.copy()
    permuted[8:16] = permuted[8:16][::-1]
    changed[20, 3, 3] += 0.25
    for altered, first in ((flipped, 0), (permuted, 8), (changed, 20)):
        with pytest.raises(ValueError, match=rf"different dataset: .* first at index {first}"):
            cache(teacher, _data(altered, y), path=path)
    with pytest.raises(ValueError, match="32 samples cached, 16 now"):
        cache(teacher, _data(x[:16], y[:16]), path=path)
    assert _snapshot(path) == before
    # The new teacher's outputs only with overwrite=True, swapped in whole.
    replaced = _logits(cache(other, _data(x, y), path=path, overwrite=True))
    np.testing.assert_allclose(replaced, other(x).numpy(), rtol=1e-5, atol=1e-6)
    assert _snapshot(path) != before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no leftovers


def test_disk_and_memory_caches_agree_and_load_skips_the_teacher(digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher", counter=True)
    path = str(tmp_path / "cache")
    kwargs = dict(augment=crop_flip, views=2, top_k=4, part_size=12)
    on_disk = build(teacher, _data(x, y), path=path, **kwargs)
    in_memory = build(teacher, _data(x, y), **kwargs)
    counter = teacher.get_layer("counter").count
    counter.assign(0.0)
    loaded = build(teacher, _data(x, y), path=path, **kwargs)
    streamed = build(teacher, _data(x, y), path=path, in_memory=False, **kwargs)
    assert float(counter.numpy()) == 0.0
    assert sorted(n for n in os.listdir(path) if n.startswith("part-")) == [
        "part-00000", "part-00001", "part-00002"]  # 32 samples in shards of 12
    runs = [list(c.dataset(batch_size=8, seed=3)) for c in (on_disk, in_memory, loaded, streamed)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
            for key in a[2]:
                np.testing.assert_array_equal(a[2][key].numpy(), b[2][key].numpy())
    assert on_disk.nbytes == cache_store.disk_bytes(path) > 0


def test_an_interrupted_caching_pass_resumes_after_its_whole_parts(digits_batch, tmp_path, monkeypatch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher", counter=True)
    path = str(tmp_path / "cache")
    save = cache_store.save_part

    def crash_on_third(directory, index, arrays):
        if index == 2:
            raise KeyboardInterrupt("simulated interruption")
        save(directory, index, arrays)

    monkeypatch.setattr(cache_store, "save_part", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build(teacher, _data(x, y), path=path, part_size=8)
    monkeypatch.setattr(cache_store, "save_part", save)
    assert cache_store.done_parts(path) == 2 and not os.path.exists(os.path.join(path, "complete.json"))
    counter = teacher.get_layer("counter").count
    counter.assign(0.0)
    resumed = build(teacher, _data(x, y), path=path, part_size=8)
    assert float(counter.numpy()) == 2.0  # only batches 3 and 4 (samples 16..31) ran
    got = np.concatenate([b[2]["logits"].numpy() for b in resumed.dataset(batch_size=8)])
    np.testing.assert_allclose(got, teacher(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_corrupt_cache_file_is_named(digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    path = str(tmp_path / "cache")
    cache(teacher, _data(x, y), path=path, part_size=16)
    shard = next(f for f in sorted(_snapshot(path)) if f.startswith("part-00001") and
                 f.endswith(".snapshot"))
    full = os.path.join(path, shard)
    with open(full, "r+b") as handle:
        handle.seek(40)
        handle.write(b"\x00garbage\xff" * 8)
    with pytest.raises(cache_store.CacheCorruptError, match=r"part-00001.*corrupt.*overwrite=True"):
        cache(teacher, _data(x, y), path=path)
    with open(os.path.join(path, "manifest.json"), "w") as handle:
        handle.write("{not json")
    with pytest.raises(cache_store.CacheCorruptError, match=r"manifest.json' is corrupt"):
        cache(teacher, _data(x, y), path=path)
    cache(teacher, _data(x, y), path=path, overwrite=True)  # the fix the message gives


def test_a_directory_that_is_not_a_cache_is_never_written_into(digits_batch, tmp_path):
    x, y = digits_batch
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(ValueError, match="is not a teacher cache"):
        cache(tiny_cnn(16), _data(x, y), path=str(tmp_path))
    assert os.listdir(tmp_path) == ["mine.txt"]


@pytest.mark.slow
def test_two_processes_sharing_one_cache_path_neither_corrupts_the_other(tmp_path):
    path = str(tmp_path / "shared")
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = [subprocess.Popen([sys.executable, SCRIPT, path, str(tmp_path / f"out{i}.npz")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    results = [p.communicate(timeout=TIMEOUT) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["samples"] == 96
    a, b = (np.load(tmp_path / f"out{i}.npz") for i in range(2))
    np.testing.assert_array_equal(a["x"], b["x"])
    np.testing.assert_array_equal(a["logits"], b["logits"])
    assert cache_store.done_parts(path) == 3
    assert sorted(os.listdir(path)) == ["complete.json", "manifest.json", "part-00000",
                                        "part-00001", "part-00002"]


@pytest.mark.slow
def test_cached_views_train_the_same_under_mirrored_strategy(tmp_path):
    script = os.path.join(os.path.dirname(SCRIPT), "cache_mirrored_check.py")
    result = subprocess.run([sys.executable, script, str(tmp_path / "cache")], capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    for key in ("loss", "kd", "dkd", "nkd", "hint"):
        assert report["two"][key] == pytest.approx(report["one"][key], rel=1e-5, abs=1e-6), key
        assert report["live"][key] == pytest.approx(report["one"][key], rel=1e-5, abs=1e-6), key
    assert report["max_weight_diff"] < 1e-5 and report["live_max_weight_diff"] < 1e-5
    # A top-k + quantized-tail cache: the same on two replicas as on one.
    for key in ("loss", "kd", "dkd", "nkd", "hint"):
        assert report["tail_two"][key] == pytest.approx(report["tail_one"][key], rel=1e-5, abs=1e-6), key
    assert report["tail_max_weight_diff"] < 1e-5
    assert report["tail_one"]["kd"] != report["one"]["kd"]  # the tail cache was really used


def test_a_disk_tail_cache_streams_and_loads_like_memory_and_refuses_other_bits(
        digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    path = str(tmp_path / "tail")
    memory = build(teacher, _data(x, y), top_k=4, tail_bits=3)
    disk = build(teacher, _data(x, y), path=path, top_k=4, tail_bits=3)
    streamed = build(teacher, _data(x, y), path=path, top_k=4, tail_bits=3, in_memory=False)
    logits = [np.concatenate([b[-1]["logits"].numpy() for b in c.dataset(8)])
              for c in (memory, disk, streamed)]
    np.testing.assert_array_equal(logits[0], logits[1])
    np.testing.assert_array_equal(logits[0], logits[2])
    before = _snapshot(path)
    with pytest.raises(ValueError, match=r"tail_bits \(3 cached, 4 now\)"):
        build(teacher, _data(x, y), path=path, top_k=4, tail_bits=4)
    with pytest.raises(ValueError, match=r"tail_bits \(3 cached, None now\)"):
        build(teacher, _data(x, y), path=path, top_k=4)
    assert _snapshot(path) == before


def test_a_cache_that_fails_on_its_first_batches_leaves_nothing_at_its_path(digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    path = str(tmp_path / "cache")
    with pytest.raises(ValueError, match="top_k=10 keeps every class exactly"):
        build(teacher, _data(x, y), path=path, top_k=10, tail_bits=3)  # 10 classes
    assert not os.path.exists(path)  # no manifest to refuse the corrected call
    fixed = build(teacher, _data(x, y), path=path, top_k=3, tail_bits=3)
    assert fixed.tail_bits == 3 and sorted(os.listdir(path))[:2] == ["complete.json", "manifest.json"]


def test_a_frozen_teacher_loads_the_cache_built_before_it_was_frozen(digits_batch, tmp_path):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher")
    path = str(tmp_path / "cache")
    built = build(teacher, _data(x, y), path=path)
    keras_kd.Distiller(teacher, tiny_cnn(8, name="student"))  # freezes the teacher
    assert teacher.trainable is False
    before = _snapshot(path)
    again = build(teacher, _data(x, y), path=path)  # was: "the teacher's architecture" differs
    np.testing.assert_array_equal(_logits(again.dataset(8)), _logits(built.dataset(8)))
    assert _snapshot(path) == before
    # A cache written by 0.2.0 (from the unfrozen teacher) digested the
    # trainable flags; it loads too.
    manifest = os.path.join(path, cache_store.MANIFEST)
    with open(manifest) as handle:
        stored = json.load(handle)
    teacher.trainable = True
    stored["teacher_architecture"] = teacher_digest.architecture_digest(teacher, trainable=True)
    teacher.trainable = False
    keras_kd.atomic.write_json(manifest, stored, indent=1, sort_keys=True)
    assert _logits(build(teacher, _data(x, y), path=path).dataset(8)).shape == (32, 10)
    with pytest.raises(ValueError, match="the teacher's architecture"):
        build(tiny_cnn(32, name="teacher"), _data(x, y), path=path)


def test_the_caching_progress_bar_ends_at_the_number_of_samples(digits_batch, tmp_path, capsys):
    x, y = digits_batch
    x, y = x[:27], y[:27]  # 4 batches of 8: 32 is only an upper bound
    capsys.readouterr()
    cache(tiny_cnn(16), _data(x, y), path=str(tmp_path / "cache"), part_size=8)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    counts = re.findall(r"(\d+)/(\d+) ", shown)
    assert counts and counts[-1] == ("27", "27"), shown[-500:]


def test_the_cache_lock_is_filelock_exclusive_and_says_when_it_waits(tmp_path, capsys):
    import threading

    path = str(tmp_path / "cache")
    held, release, entered = threading.Event(), threading.Event(), threading.Event()

    def holder():
        with cache_store.locked(path):
            held.set()
            release.wait(60)

    def waiter():
        with cache_store.locked(path, "Waiting for the other writer."):
            entered.set()

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(60)
    second = threading.Thread(target=waiter)
    second.start()
    for _ in range(600):  # until the waiter has said it waits (not a timing assertion)
        if "Waiting for the other writer." in capsys.readouterr().out:
            break
        entered.wait(0.1)
    else:
        pytest.fail("the second writer never said it waits")
    assert not entered.is_set()  # still held by the first
    release.set()
    first.join(60)
    second.join(60)
    assert entered.is_set()
    assert os.path.exists(path + ".lock") or not os.path.exists(path)  # beside, never inside


def test_no_module_takes_a_posix_only_lock():
    """The cache lock is `filelock`'s (Windows too): nothing imports fcntl."""
    import ast

    root = os.path.dirname(os.path.dirname(keras_kd.__file__))
    users = []
    for folder, _, names in os.walk(os.path.dirname(keras_kd.__file__)):
        for name in (n for n in names if n.endswith(".py")):
            tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
            for node in ast.walk(tree):
                modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(m in ("fcntl", "msvcrt") for m in modules):
                    users.append(os.path.relpath(os.path.join(folder, name), root))
    assert users == []
