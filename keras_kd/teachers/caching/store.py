"""The on-disk layout of a teacher cache: TensorFlow's own format, written once.

    PATH/manifest.json    what was cached (teacher fingerprint, settings); first
    PATH/part-00000/      `tf.data.Dataset.save` output (GZIP), one shard of
    PATH/part-00001/      `part_size` consecutive samples each
    PATH/complete.json    sample count and data digest; written last
    PATH.lock             beside the cache: an exclusive `filelock.FileLock`
                          while writing (flock on POSIX, LockFileEx on Windows)

Every file appears by an atomic rename of a finished temporary beside it
(`keras_kd.atomic.write_atomically`), so a reader (or a second process)
never sees a half-written part, an interrupted caching pass leaves only
whole parts (the next call resumes after them), and two processes sharing
PATH serialize on the lock.
"""

import contextlib
import json
import os

import filelock
import numpy as np
import tensorflow as tf

from keras_kd.atomic import write_atomically

MANIFEST = "manifest.json"
COMPLETE = "complete.json"
FORMAT_VERSION = 2
_RECORD_BATCH = 256  # samples per saved element: fewer, larger records read faster


class CacheCorruptError(ValueError):
    """A cache file cannot be read; the message names it and the fix."""


@contextlib.contextmanager
def locked(path, wait_message=None):
    """Holds an exclusive lock on `PATH.lock` (beside the cache, never inside);
    when another process holds it, prints `wait_message` and waits."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    lock = filelock.FileLock(os.path.abspath(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if wait_message:
            print(wait_message, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as error:
        raise CacheCorruptError(
            f"The teacher cache file '{path}' is corrupt or unreadable ({error}). Delete "
            f"'{os.path.dirname(path)}' or pass overwrite=True to recompute the cache.") from None
    if not isinstance(data, dict):
        raise CacheCorruptError(f"The teacher cache file '{path}' is corrupt (not a JSON object). "
                                "Delete the cache directory or pass overwrite=True.")
    return data


def part_dir(path, index):
    return os.path.join(path, f"part-{index:05d}")


def done_parts(path):
    """The number of consecutive finished parts from part 0."""
    count = 0
    while os.path.isdir(part_dir(path, count)):
        count += 1
    return count


def save_part(path, index, arrays):
    """Saves one part (dict of equal-length arrays) beside, then renames it in."""
    data = tf.data.Dataset.from_tensor_slices(arrays).batch(_RECORD_BATCH)
    write_atomically(part_dir(path, index),
                     lambda temporary: data.save(temporary, compression="GZIP"))


def _part_files(directory):
    files = []
    for root, _, names in os.walk(directory):
        files += [os.path.join(root, n) for n in names]
    return sorted(files)


def _corrupt(directory, error):
    files = _part_files(directory) or [directory]
    return CacheCorruptError(
        f"The teacher cache part '{directory}' is corrupt or unreadable (files: "
        f"{', '.join(files)}): {type(error).__name__}: {str(error).splitlines()[0][:300]}. "
        f"Delete '{os.path.dirname(directory)}' or pass overwrite=True to recompute the cache.")


def load_part(path, index):
    directory = part_dir(path, index)
    try:
        return tf.data.Dataset.load(directory, compression="GZIP")
    except Exception as error:  # any TensorFlow/proto error: name the file
        raise _corrupt(directory, error) from None


def read_parts(path, num_parts, keys=None):
    """Reads every part into numpy (checks every byte decodes); `keys` limits what is kept."""
    columns = {}
    for index in range(num_parts):
        directory = part_dir(path, index)
        try:
            for record in load_part(path, index).as_numpy_iterator():
                for key, value in record.items():
                    if keys is None or key in keys:
                        columns.setdefault(key, []).append(value)
        except CacheCorruptError:
            raise
        except Exception as error:
            raise _corrupt(directory, error) from None
    return {key: np.concatenate(parts) for key, parts in columns.items()}


def stream_parts(path, num_parts):
    """All parts as one per-sample dataset (read from disk on every pass)."""
    data = load_part(path, 0)
    for index in range(1, num_parts):
        data = data.concatenate(load_part(path, index))
    return data.unbatch()


def disk_bytes(path):
    """Bytes of the cache's part files on disk."""
    return sum(os.path.getsize(f) for i in range(done_parts(path))
               for f in _part_files(part_dir(path, i)))
