"""Plain-numpy references shared by the feature-term tests.

They are written from the papers and the torch code the terms follow, on
purpose without any keras_kd code, so that the tests compare two independent
derivations.
"""

import math

import numpy as np


def numpy_adaptive_pool(x, out_h, out_w):
    """torch adaptive_avg_pool2d on NHWC: window [floor(i·n/m), ceil((i+1)·n/m))."""
    n, h, w, c = x.shape
    out = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        h0, h1 = math.floor(i * h / out_h), math.ceil((i + 1) * h / out_h)
        for j in range(out_w):
            w0, w1 = math.floor(j * w / out_w), math.ceil((j + 1) * w / out_w)
            out[:, i, j, :] = x[:, h0:h1, w0:w1, :].mean(axis=(1, 2))
    return out


def numpy_pool_to_common_size(a, b):
    """Both NHWC maps as float64, the larger adaptive-pooled to the smaller
    height and width (RepDistiller's AT and FSP)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    h = min(a.shape[1], b.shape[1])
    w = min(a.shape[2], b.shape[2])
    if a.shape[1:3] != (h, w):
        a = numpy_adaptive_pool(a, h, w)
    if b.shape[1:3] != (h, w):
        b = numpy_adaptive_pool(b, h, w)
    return a, b


def numpy_per_sample(reference, teacher, student):
    """`reference` applied to each sample alone: one value per sample.

    `teacher` and `student` are arrays (batch, ...) or lists of them (one
    per tap); for terms whose batch value is the mean of per-sample values,
    this is the per-sample vector the term must return.
    """
    def take(x, i):
        if isinstance(x, (list, tuple)):
            return [np.asarray(a)[i:i + 1] for a in x]
        return np.asarray(x)[i:i + 1]

    batch = len(teacher[0] if isinstance(teacher, (list, tuple)) else teacher)
    return np.array([reference(take(teacher, i), take(student, i)) for i in range(batch)])
