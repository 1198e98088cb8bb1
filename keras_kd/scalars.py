"""What counts as a number in keras-kd's arguments.

NumPy scalars (`np.int64(4)`, `np.float32(0.5)`) and 0-d arrays count, as
Python numbers do; booleans and strings do not (`True` as a temperature or
`"4"` as a weight is a mistake, not a number).
"""

import numbers

import numpy as np


def _unwrap(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def is_real(value):
    """True for int, float and NumPy integer/floating scalars (not bool)."""
    value = _unwrap(value)
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value):
    """True for int and NumPy integer scalars (not bool, not 4.0)."""
    value = _unwrap(value)
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_python(value):
    """A real number as a Python int or float (NumPy scalars converted)."""
    value = _unwrap(value)
    return int(value) if is_integer(value) else float(value)
