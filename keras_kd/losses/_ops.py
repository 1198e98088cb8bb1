"""Small `keras.ops` helpers shared by the feature-based terms.

Every helper works on static spatial sizes (known when the graph is traced),
so the constants it builds (pooling windows, gather indices) are fixed at
trace time and the step stays XLA-compilable. Layout: NHWC.
"""

import numpy as np
from keras import ops


def to_float32(x):
    """Casts a tensor (or array) to float32."""
    return ops.cast(x, "float32")


def spatial_size(x):
    """The static `(height, width)` of an NHWC tensor (None where unknown)."""
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise ValueError(
            f"Expected an NHWC feature map (rank 4), got shape {shape}."
        )
    return shape[1], shape[2]


def _pool_matrix(in_size, out_size):
    """(out, in) averaging matrix of torch's adaptive_avg_pool (any sizes)."""
    matrix = np.zeros((out_size, in_size), dtype="float32")
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)  # ceil((i + 1) * in / out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d(x, output_size):
    """torch.nn.functional.adaptive_avg_pool2d for an NHWC tensor.

    Window i along an axis of size n pooled to m covers
    [floor(i·n/m), ceil((i+1)·n/m)), as in PyTorch, so divisible sizes give a
    plain average pool with kernel = stride = n/m. Needs static height and
    width.
    """
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    out_h, out_w = (int(v) for v in output_size)
    h, w = spatial_size(x)
    if h is None or w is None:
        raise ValueError(
            "Adaptive pooling needs a static height and width, got shape "
            f"{tuple(x.shape)}. Give the models a fixed input size."
        )
    if (h, w) == (out_h, out_w):
        return x
    channels = x.shape[-1]
    if h % out_h == 0 and w % out_w == 0 and channels is not None:
        x = ops.reshape(x, (-1, out_h, h // out_h, out_w, w // out_w, channels))
        return ops.mean(x, axis=(2, 4))
    rows = ops.convert_to_tensor(_pool_matrix(h, out_h), dtype=x.dtype)
    cols = ops.convert_to_tensor(_pool_matrix(w, out_w), dtype=x.dtype)
    x = ops.einsum("oh,bhwc->bowc", rows, x)
    return ops.einsum("pw,bowc->bopc", cols, x)


def pool_to_common_size(a, b):
    """Average-pools the larger of two NHWC maps to the other's size.

    Each spatial axis is pooled to the smaller of the two sizes (RepDistiller
    pools the larger map with adaptive_avg_pool2d). Unknown (None) sizes are
    assumed equal.
    """
    (ha, wa), (hb, wb) = spatial_size(a), spatial_size(b)
    if None in (ha, wa, hb, wb):
        return a, b
    h, w = min(ha, hb), min(wa, wb)
    if (ha, wa) != (h, w):
        a = adaptive_avg_pool2d(a, (h, w))
    if (hb, wb) != (h, w):
        b = adaptive_avg_pool2d(b, (h, w))
    return a, b


def nearest_indices(in_size, out_size):
    """Source indices of torch's `F.interpolate(mode="nearest")`."""
    scale = np.float32(in_size) / np.float32(out_size)
    index = np.floor(np.arange(out_size, dtype="float32") * scale)
    return np.minimum(index.astype("int32"), in_size - 1)


def resize_nearest(x, size):
    """Nearest-neighbour resize of an NHWC map to `size` = (h, w), as torch's
    `F.interpolate(x, size, mode="nearest")` (source = floor(dst · in/out))."""
    out_h, out_w = (int(v) for v in size)
    h, w = spatial_size(x)
    if (h, w) == (out_h, out_w):
        return x
    if h is None or w is None:
        raise ValueError(
            "Nearest resizing needs a static height and width, got shape "
            f"{tuple(x.shape)}."
        )
    x = ops.take(x, nearest_indices(h, out_h), axis=1)
    return ops.take(x, nearest_indices(w, out_w), axis=2)


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """x / max(‖x‖₂, ε) along `axis`, like torch's `F.normalize`.

    Computed as x / sqrt(max(Σx², ε²)) so that the gradient stays finite for
    an all-zero vector (sqrt'(0) is infinite).
    """
    squared = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(squared, epsilon * epsilon))


def flatten_per_sample(x):
    """Reshapes `(batch, ...)` to `(batch, features)`."""
    x = to_float32(x)
    if len(x.shape) == 2:
        return x
    features = 1
    for dim in x.shape[1:]:
        if dim is None:
            return ops.reshape(x, (ops.shape(x)[0], -1))
        features *= dim
    return ops.reshape(x, (-1, features))


def as_name_list(value, what):
    """A layer name or a list of names -> a list of non-empty strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise TypeError(
            f"{what} must be a layer name or a non-empty list of layer names, "
            f"got {value!r}."
        )
    for name in value:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must hold layer names (strings), got {name!r}.")
    return list(value)
