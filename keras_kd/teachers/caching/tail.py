"""The other classes of a top-k teacher cache, quantized: near-full logits in few bytes.

`top_k=k` alone keeps the k largest logits and one "rest" mass per
temperature (`keras_kd.losses.topk_kd`). KD on that support drops the
teacher's distribution *within* the rest, which is large at the
temperatures KD uses: 9% of the KD value at T = 4 for a trained 100-class
teacher with k = 10 (docs/cache.md). `tail_bits=b` keeps that distribution
too, coarsely: every class outside the top-k gets a b-bit code, so the
cache replays approximate *full* logits and every term (KD, DKD, NKD, DIST,
...) can train on it.

Per sample and view, with S the teacher's top-k classes, t its logits,
`low = min_{i∉S} t_i`, `high = min_{i∈S} t_i` (the k-th largest logit, read
back from the stored top-k values) and `step = (high − low) / (2^b − 1)`:

    code_i = round((t_i − low) / step)        i ∉ S, in ascending class order
    t̂_i = t_i (exact, float32)                i ∈ S
    t̂_i = low + code_i · step                 i ∉ S, so |t̂_i − t_i| ≤ step / 2

Stored: the top-k values (float32) and classes (uint8 up to 256 classes,
int16 up to 32,768), the codes packed b bits each (`ceil((C − k)·b / 8)`
bytes) and `low` (float32). For C = 100, k = 10, b = 3 that is 88 bytes,
22% of the 400 bytes of float32 logits.
"""

import numbers
import re

import tensorflow as tf

from keras_kd.losses.topk_kd import TOPK_INDICES, TOPK_VALUES
from keras_kd.taps.views import LOGITS

TAIL_LOW = "logits@tail_low"
_TAIL_PREFIX = "logits@tail_codes@"
_TAIL_KEY = re.compile(r"bits=(\d+),classes=(\d+)$")
MAX_BITS = 8


def tail_key(bits, classes):
    """The cache key of the packed codes; it names `bits` and the class count."""
    return f"{_TAIL_PREFIX}bits={int(bits)},classes={int(classes)}"


def find_tail_key(outputs):
    """`(key, bits, classes)` of the packed codes in `outputs`, or None."""
    for key in outputs:
        if key.startswith(_TAIL_PREFIX):
            bits, classes = _TAIL_KEY.search(key).groups()
            return key, int(bits), int(classes)
    return None


def check_tail_bits(tail_bits, top_k):
    """`tail_bits` as an int in [1, 8], or None; it needs `top_k`."""
    if tail_bits is None:
        return None
    if isinstance(tail_bits, bool) or not isinstance(tail_bits, numbers.Integral) \
            or not 1 <= int(tail_bits) <= MAX_BITS:
        raise ValueError(f"tail_bits must be an integer in [1, {MAX_BITS}] or None, "
                         f"got {tail_bits!r}.")
    if top_k is None:
        raise ValueError(f"tail_bits={tail_bits} quantizes the classes outside the top-k, so "
                         "it needs top_k=k too (e.g. top_k=10, tail_bits=3); without top_k "
                         "the cache stores full logits already.")
    return int(tail_bits)


def pack_bits(codes, bits):
    """`(..., n)` integer codes in [0, 2^bits) as `(..., ceil(n·bits / 8))` uint8, LSB first."""
    codes = tf.cast(codes, tf.int32)
    lead, n = tf.shape(codes)[:-1], codes.shape[-1]
    planes = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(codes[..., None], tf.range(bits, dtype=tf.int32)), 1)
    stream = tf.reshape(planes, tf.concat([lead, [n * bits]], 0))
    pad = -(n * bits) % 8
    stream = tf.pad(stream, tf.concat([tf.zeros([tf.rank(codes) - 1, 2], tf.int32),
                                       [[0, pad]]], 0))
    octets = tf.reshape(stream, tf.concat([lead, [(n * bits + pad) // 8, 8]], 0))
    weights = tf.bitwise.left_shift(1, tf.range(8, dtype=tf.int32))
    return tf.cast(tf.reduce_sum(octets * weights, axis=-1), tf.uint8)


def unpack_bits(packed, count, bits):
    """The inverse of `pack_bits`: `(..., count)` int32 codes."""
    packed = tf.cast(packed, tf.int32)
    lead = tf.shape(packed)[:-1]
    stream = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(packed[..., None], tf.range(8, dtype=tf.int32)), 1)
    stream = tf.reshape(stream, tf.concat([lead, [packed.shape[-1] * 8]], 0))[..., :count * bits]
    planes = tf.reshape(stream, tf.concat([lead, [count, bits]], 0))
    weights = tf.bitwise.left_shift(1, tf.range(bits, dtype=tf.int32))
    return tf.reduce_sum(planes * weights, axis=-1)


def _tail_classes(indices, classes):
    """The classes outside `indices` (the top-k), ascending: `(..., classes − k)`."""
    indices = tf.cast(indices, tf.int32)
    in_top = tf.reduce_any(tf.equal(indices[..., :, None], tf.range(classes)), axis=-2)
    # Top-k classes sort after every other class; the rest keep class order.
    order = tf.argsort(tf.cast(in_top, tf.int32) * classes + tf.range(classes), stable=True)
    return order[..., :classes - indices.shape[-1]]


def _step(values, low, bits):
    high = tf.reduce_min(values, axis=-1)
    return (high - low) / float(2**bits - 1)


def encode_tail(logits, values, indices, bits):
    """`(packed codes, low)` of the logits outside the top-k (`values`, `indices`).

    `logits`: `(..., C)`; `values`, `indices`: the top-k, `(..., k)`.
    """
    logits = tf.cast(logits, tf.float32)
    classes, k = int(logits.shape[-1]), int(values.shape[-1])
    if k >= classes:
        raise ValueError(f"tail_bits needs top_k below the number of classes ({classes}); "
                         f"top_k={k} keeps every class exactly: drop tail_bits.")
    # Logits must be finite (a −inf class makes its sample's codes NaN):
    # the caching pass checks them and names the sample (`compute.py`).
    tail = tf.gather(logits, _tail_classes(indices, classes), batch_dims=len(logits.shape) - 1)
    low = tf.reduce_min(tail, axis=-1)
    step = _step(tf.cast(values, tf.float32), low, bits)
    safe = tf.where(step > 0, step, 1.0)[..., None]
    codes = tf.clip_by_value(tf.round((tail - low[..., None]) / safe), 0, 2**bits - 1)
    return pack_bits(codes, bits), low


def decode_logits(values, indices, packed, low, bits, classes):
    """`(..., classes)` float32 logits: the top-k exact, the others dequantized."""
    values = tf.cast(values, tf.float32)
    indices = tf.cast(indices, tf.int32)
    low = tf.cast(low, tf.float32)
    k = int(values.shape[-1])
    codes = unpack_bits(packed, classes - k, bits)
    tail = low[..., None] + tf.cast(codes, tf.float32) * _step(values, low, bits)[..., None]
    placed = tf.concat([_tail_classes(indices, classes), indices], axis=-1)
    # `placed` is a permutation of the classes; its inverse puts each value home.
    home = tf.argsort(placed, axis=-1)
    return tf.gather(tf.concat([tail, values], axis=-1), home, batch_dims=len(values.shape) - 1)


def decode_outputs(outputs):
    """Replay: a top-k + tail record's outputs with `"logits"` rebuilt (compact keys dropped).

    Outputs without a tail are returned as they are.
    """
    found = find_tail_key(outputs)
    if found is None:
        return outputs
    key, bits, classes = found
    out = {k: v for k, v in outputs.items() if k not in (key, TAIL_LOW, TOPK_VALUES, TOPK_INDICES)}
    out[LOGITS] = decode_logits(outputs[TOPK_VALUES], outputs[TOPK_INDICES], outputs[key],
                                  outputs[TAIL_LOW], bits, classes)
    return out
