"""Token-level divergences: one value per position of `(batch, ..., vocab)`
logits, computed in chunks of positions when asked, then reduced.

A divergence is given as `values_and_gradients(t, s)`: on float32 rows
`(n, vocab)` it returns the values `(n,)` and a function that maps the
upstream gradient `(n,)` to the gradients of the teacher's and the student's
logits, both `(n, vocab)`, written out (not traced), so that nothing but the
logits themselves has to be kept for the backward pass.

`position_values(..., chunk_size=c)` runs it on `c` positions at a time, in
both passes, under a custom gradient: the forward pass keeps only the
values, and the backward pass recomputes each chunk from the logits before
taking its gradient (rematerialisation by hand; Keras's `keras.remat` would
keep the chunks' inputs and let the compilers schedule all chunks side by
side). The float32 cast of bfloat16/float16 logits is made chunk by chunk.
How the chunks are walked depends on the compiler (measured in
benchmarks/lm_memory.py):

- under XLA (JAX; TensorFlow with `jit_compile=True`), a loop
  (`ops.fori_loop`) writing each chunk into the result in place
  (`ops.slice_update`): the temporaries are one chunk's, `c × vocab`, besides
  the gradient itself. Unrolled, XLA's scheduler would run the chunks side
  by side and hold them all.
- otherwise (TensorFlow eagerly or in a plain `tf.function`), chunks
  unrolled in Python and concatenated: one chunk's temporaries plus the
  chunks of the gradient until they are concatenated (one gradient-sized
  copy). A loop's in-place update is a full copy per chunk there.

The number of positions must be known when the function is traced (a
static batch size).
"""

import math

from keras import ops

from keras_kd.checks.tensors import check_mask, describe_shape
from keras_kd.losses._dense import mean_over_positions
from keras_kd.xla import compiled_by_xla


def _float32(x):
    return ops.cast(x, "float32")


def _upstream(args, upstream):
    """TensorFlow passes the upstream gradient positionally, JAX by name."""
    return args[0] if upstream is None else upstream


def _whole(values_and_gradients, t, s):
    """All positions at once; the backward pass reuses the forward's values."""

    @ops.custom_gradient
    def positions(t, s):
        values, gradients = values_and_gradients(t, s)

        def backward(*args, upstream=None):
            return gradients(_upstream(args, upstream))

        return values, backward

    return positions(_float32(t), _float32(s))


def _looped(values_and_gradients, t, s, chunk_size):
    """`(n, vocab)` rows in a loop over chunks of equal size, in place.

    When `chunk_size` does not divide n, the last chunk ends at the last row
    and overlaps the one before: it writes that chunk's values and
    gradients again, unchanged (each row's depend on that row alone).
    """
    positions, classes = t.shape
    size = min(chunk_size, positions)
    count = -(-positions // size)
    last = positions - size

    def start(k):
        return ops.minimum(k * size, last)

    def chunk(t, s, k):
        rows = (start(k), 0), (size, classes)
        return values_and_gradients(_float32(ops.slice(t, *rows)), _float32(ops.slice(s, *rows)))

    @ops.custom_gradient
    def positions_in_chunks(t, s):
        values = ops.fori_loop(
            0, count, lambda k, out: ops.slice_update(out, (start(k),), chunk(t, s, k)[0]),
            ops.zeros((positions,), "float32"))

        def backward(*args, upstream=None):
            upstream = _upstream(args, upstream)

            def gradient(side, like):
                # One loop per side, each recomputing its chunks: the
                # teacher's loop is dropped when its gradient is not used.
                def step(k, out):
                    _, gradients = chunk(t, s, k)
                    part = gradients(ops.slice(upstream, (start(k),), (size,)))[side]
                    return ops.slice_update(out, (start(k), 0), ops.cast(part, like.dtype))

                return ops.fori_loop(0, count, step, ops.zeros_like(like))

            return gradient(0, t), gradient(1, s)

        return values, backward

    return positions_in_chunks(t, s)


def _unrolled(values_and_gradients, t, s, chunk_size):
    """`(n, vocab)` rows in chunks unrolled in Python, concatenated."""
    positions = t.shape[0]
    bounds = [(i, min(i + chunk_size, positions)) for i in range(0, positions, chunk_size)]

    def chunk(t, s, i, j):
        return values_and_gradients(_float32(t[i:j]), _float32(s[i:j]))

    @ops.custom_gradient
    def positions_in_chunks(t, s):
        values = [chunk(t, s, i, j)[0] for i, j in bounds]

        def backward(*args, upstream=None):
            upstream = _upstream(args, upstream)

            def gradient(side, like):
                parts = [ops.cast(chunk(t, s, i, j)[1](upstream[i:j])[side], like.dtype)
                         for i, j in bounds]
                return ops.concatenate(parts, axis=0)

            return gradient(0, t), gradient(1, s)

        return ops.concatenate(values, axis=0), backward

    return positions_in_chunks(t, s)


def position_values(values_and_gradients, t, s, chunk_size=None, what="loss"):
    """float32 values of shape `t.shape[:-1]`, one per position.

    `t` and `s` are logits `(batch, ..., vocab)` of equal shape (any float
    dtype); `values_and_gradients` is described in the module docstring.
    `chunk_size=None` computes all positions at once (fastest; the backward
    pass reuses the forward pass's intermediates); an int computes them
    `chunk_size` at a time in both passes, with the same values and
    gradients.
    """
    if chunk_size is None:
        return _whole(values_and_gradients, t, s)
    shape = tuple(t.shape)
    if any(d is None for d in shape[:-1]):
        raise ValueError(
            f"{what}: chunk_size={chunk_size} needs the number of positions (batch × time) "
            f"when the function is traced, but the logits have shape {describe_shape(shape)}. "
            "Give the batch a fixed size (drop_remainder=True in tf.data, or "
            "keras.Input(batch_size=...)), or pass chunk_size=None."
        )
    positions = math.prod(shape[:-1])
    if positions == 0:
        return _whole(values_and_gradients, t, s)
    rows = (positions, shape[-1])
    walk = _looped if compiled_by_xla() else _unrolled
    values = walk(values_and_gradients, ops.reshape(t, rows), ops.reshape(s, rows), chunk_size)
    return ops.reshape(values, shape[:-1])


def reduce_positions(values, mask=None, per_position=False, what="loss"):
    """Per-position values `(batch, ...)` as a term returns them.

    `per_position=False`: one value per sample, the mean over its valid
    positions, Σ_i values_bi·mask_bi / max(Σ_i mask_bi, 1) (`(batch,)`).
    `per_position=True`: the values themselves times the mask, exactly 0 at
    masked positions (shape `(batch, ...)`), for token-level normalisation
    (the sum over a batch's tokens divided by their number, as TRL and
    DistiLLM reduce).
    """
    if mask is not None:
        mask = check_mask(mask, tuple(values.shape), what)
        values = ops.where(mask > 0, values, 0.0)
    if per_position:
        return values if mask is None else values * mask
    return mean_over_positions(values, mask)
