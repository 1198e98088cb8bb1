"""The token-level divergences computed in chunks of positions
(`chunk_size`) give the values and gradients of the whole computation:
chunk sizes that divide the positions or not, larger than them, with masks
and bfloat16 logits; on JAX (a loop under XLA), on TensorFlow eagerly and in
a plain tf.function (unrolled chunks) and under jit_compile=True (the
loop). Memory is measured, not asserted: benchmarks/lm_memory.py."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_kd import losses
from keras_kd.xla import compiled_by_xla
from tests.helpers.numpy_divergences import backend_value_and_gradients

# (id, function, settings)
CASES = [
    ("kd", losses.kd_loss, {"temperature": 2.0}),
    ("reverse_kl", losses.reverse_kl_loss, {"temperature": 0.5}),
    ("jsd", losses.generalized_jsd_loss, {"beta": 0.3, "temperature": 1.5}),
    ("jsd_beta_0", losses.generalized_jsd_loss, {"beta": 0.0}),
    ("jsd_beta_1", losses.generalized_jsd_loss, {"beta": 1.0}),
    ("skl", losses.skew_kl_loss, {"alpha": 0.1, "temperature": 4.0}),
    ("srkl", losses.skew_kl_loss, {"alpha": 0.1, "reverse": True}),
    ("tvd", losses.tvd_loss, {"temperature": 2.0}),
]
IDS = [case[0] for case in CASES]
SHAPE = (3, 7, 11)  # 21 positions
CHUNKS = [1, 4, 20, 100]  # 4 and 20 do not divide the 21 positions; 100 is more than all


def _inputs(seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    t = rng.normal(scale=3.0, size=SHAPE).astype(dtype)
    s = rng.normal(scale=3.0, size=SHAPE).astype(dtype)
    mask = (rng.uniform(size=SHAPE[:-1]) > 0.25).astype("float32")
    weights = rng.uniform(0.5, 1.5, size=SHAPE[:-1])
    return t, s, mask, weights


def _assert_same(chunked, whole, rtol=1e-5):
    (value, grads), (want_value, want_grads) = chunked, whole
    assert value == pytest.approx(want_value, rel=rtol)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_chunked_equals_whole_values_and_gradients(case):
    _, function, settings = case
    t, s, mask, weights = _inputs()
    whole = backend_value_and_gradients(
        lambda a, b: function(a, b, mask=mask, per_position=True, **settings), t, s, weights)
    assert np.abs(whole[1][1]).max() > 0
    for chunk_size in CHUNKS:
        chunked = backend_value_and_gradients(
            lambda a, b: function(a, b, mask=mask, per_position=True, chunk_size=chunk_size,
                                  **settings), t, s, weights)
        _assert_same(chunked, whole)
    # Per-sample values (the terms' reduction) too.
    per_sample = function(t, s, mask=mask, chunk_size=4, **settings)
    np.testing.assert_allclose(np.asarray(per_sample),
                               np.asarray(function(t, s, mask=mask, **settings)), rtol=1e-5)


@pytest.mark.parametrize("case", CASES[:3] + CASES[-1:], ids=IDS[:3] + IDS[-1:])
def test_chunked_two_dimensional_logits(case):
    _, function, settings = case
    t, s, _, _ = _inputs(seed=1)
    t, s = t.reshape(-1, SHAPE[-1]), s.reshape(-1, SHAPE[-1])
    weights = np.linspace(0.5, 1.5, len(t))
    whole = backend_value_and_gradients(lambda a, b: function(a, b, **settings), t, s, weights)
    chunked = backend_value_and_gradients(
        lambda a, b: function(a, b, chunk_size=8, **settings), t, s, weights)
    _assert_same(chunked, whole)


@pytest.mark.parametrize("case", CASES[:2] + CASES[-1:], ids=IDS[:2] + IDS[-1:])
def test_chunks_of_bfloat16_logits_are_cast_one_chunk_at_a_time(case):
    # The float32 cast happens inside each chunk; values and gradients are
    # those of the float32 computation on the same (bfloat16) numbers.
    _, function, settings = case
    t, s, mask, weights = _inputs(seed=2)
    t16 = ops.cast(t, "bfloat16")
    s16 = ops.cast(s, "bfloat16")
    t32, s32 = (np.asarray(ops.convert_to_numpy(ops.cast(x, "float32"))) for x in (t16, s16))
    whole = backend_value_and_gradients(
        lambda a, b: function(a, b, mask=mask, per_position=True, **settings), t32, s32, weights)
    value = function(t16, s16, mask=mask, per_position=True, chunk_size=5, **settings)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    np.testing.assert_allclose(float(ops.sum(value * weights)), whole[0], rtol=1e-5)


def test_compiled_by_xla_on_jax():
    if keras.backend.backend() != "jax":
        pytest.skip("the JAX answer")
    assert compiled_by_xla()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_chunked_equals_whole_under_jax_jit(case):
    if keras.backend.backend() != "jax":
        pytest.skip("JAX only")
    import jax

    _, function, settings = case
    t, s, mask, weights = _inputs(seed=3)

    def gradients(chunk_size):
        loss = lambda a, b: ops.sum(function(  # noqa: E731
            a, b, mask=mask, per_position=True, chunk_size=chunk_size, **settings) * weights)
        value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(t, s)
        return float(value), tuple(np.asarray(g) for g in grads)

    whole = gradients(None)
    for chunk_size in (4, 7):
        _assert_same(gradients(chunk_size), whole)


# The KL form (KD's), a mixture, and TVD: each kind of gradient.
COMPILED = [CASES[0], CASES[2], CASES[-1]]


@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
@pytest.mark.parametrize("case", COMPILED, ids=[case[0] for case in COMPILED])
def test_chunked_equals_whole_in_tf_function(case, jit_compile):
    # A plain tf.function walks unrolled chunks; jit_compile=True, the loop.
    import tensorflow as tf

    _, function, settings = case
    t, s, mask, weights = _inputs(seed=4)
    t, s = tf.Variable(t), tf.Variable(s)
    seen = []

    @tf.function(jit_compile=jit_compile)
    def gradients(chunk_size):
        seen.append(compiled_by_xla())
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(function(t, s, mask=mask, per_position=True,
                                           chunk_size=chunk_size, **settings) * weights)
        return value, tape.gradient(value, [t, s])

    def run(chunk_size):
        value, grads = gradients(chunk_size)
        return float(value), tuple(g.numpy() for g in grads)

    _assert_same(run(4), run(None))  # 4 does not divide the 21 positions
    assert set(seen) == {jit_compile}


def test_compiled_by_xla_on_tensorflow():
    import tensorflow as tf

    assert not compiled_by_xla()  # eager
    assert not tf.function(compiled_by_xla)()
    assert tf.function(compiled_by_xla, jit_compile=True)()


def test_a_batch_size_unknown_when_traced_is_refused_with_the_fix():
    import tensorflow as tf

    spec = tf.TensorSpec((None, 5, 8), tf.float32)

    @tf.function(input_signature=[spec, spec])
    def chunked(t, s):
        return losses.reverse_kl_loss(t, s, chunk_size=4)

    with pytest.raises(ValueError, match=r"reverse_kl_loss: chunk_size=4 needs the number of "
                       r"positions.*\(None, 5, 8\).*drop_remainder=True.*chunk_size=None"):
        chunked.get_concrete_function()

    @tf.function(input_signature=[spec, spec])
    def whole(t, s):
        return losses.reverse_kl_loss(t, s, per_position=True)

    rng = np.random.default_rng(5)
    t, s = rng.normal(size=(2, 5, 8)).astype("float32"), rng.normal(size=(2, 5, 8)).astype("float32")
    np.testing.assert_allclose(whole(t, s).numpy(),
                               losses.reverse_kl_loss(t, s, per_position=True, chunk_size=3),
                               rtol=1e-5)
