"""What counts as a number in keras-kd's arguments, and the checks of the
numeric arguments themselves (weights, temperatures, epochs, flags, labels).

NumPy scalars (`np.int64(4)`, `np.float32(0.5)`) and 0-d arrays count, as
Python numbers do; booleans and strings do not (`True` as a temperature or
`"4"` as a weight is a mistake, not a number).
"""

import math
import numbers

import numpy as np

# KD's T² must stay a finite float32 with room to spare.
MAX_TEMPERATURE = 1e15


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


def check_weight(value, what):
    """Returns `value` as a float, or raises if it is negative or non-finite.

    Python and NumPy numbers are accepted (`np.float32(0.5)`); booleans and
    strings are refused.
    """
    if not is_real(value):
        raise TypeError(
            f"{what} must be a number, got {value!r} "
            f"({type(value).__name__})."
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{what} must be a finite number >= 0, got {value}. Use 0 to "
            "switch a term off."
        )
    return value


def check_temperature(value, what="temperature"):
    """Returns `value` as a float, or raises unless it is finite and > 0."""
    if not is_real(value):
        raise TypeError(
            f"{what} must be a number (Python or NumPy), got {value!r} "
            f"({type(value).__name__})."
        )
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{what} must be a finite number > 0, got {value}. Hinton et al. "
            "use T in [1, 20]; T=4 is a common default."
        )
    return value


def check_kd_temperature(value):
    """`check_temperature`, plus the upper end of KD's valid range."""
    value = check_temperature(value)
    if value > MAX_TEMPERATURE:
        raise ValueError(
            f"temperature {value:g} is above {MAX_TEMPERATURE:g}, where T² "
            "overflows float32. KD's loss is already its large-T limit, "
            "(1/2C)·Σ(centred teacher − student logits)², to float32 "
            "precision from T ≈ 1e6: use T <= 1e6."
        )
    return value


def check_fraction(value, what, upper_open=False, hint=""):
    """Returns `value` as a float in [0, 1] (or [0, 1) with `upper_open`),
    or raises naming the argument, the value and `hint`."""
    if not is_real(value):
        raise TypeError(f"{what} must be a number in [0, 1], got {value!r} "
                        f"({type(value).__name__}).")
    value = float(value)
    inside = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not inside:
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{what} must be in {interval}, got {value}.{hint}")
    return value


def check_chunk_size(value):
    """None (no chunking) or a number of positions >= 1, as an int."""
    if value is None:
        return None
    if not is_integer(value) or int(value) < 1:
        raise ValueError(
            f"chunk_size must be None (all positions at once) or a whole number of "
            f"positions >= 1, got {value!r}. A chunk holds chunk_size × vocabulary "
            "float32 values per temporary: 1024 positions of a 128k vocabulary are 512 MB."
        )
    return int(value)


def check_epochs(value, what):
    """A number of epochs >= 0 (int when whole), or a clear error."""
    if not is_real(value):  # NumPy scalars count; bools and strings do not
        raise TypeError(f"{what} must be a number of epochs, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value}.")
    return int(value) if value == int(value) else value


def check_flag(value, what):
    """A Python bool (NumPy bools too), or a TypeError naming the argument."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{what} must be True or False, got {value!r}.")


def check_ignore_index(value):
    """Returns `value` as an int, or raises a TypeError naming the fix."""
    if isinstance(value, bool):
        raise TypeError(f"ignore_index must be an integer label, got {value!r}.")
    try:
        as_int = int(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"ignore_index must be an integer label (e.g. -1 or 255), got "
            f"{value!r}."
        ) from None
    if as_int != value:
        raise TypeError(f"ignore_index must be a whole number, got {value!r}.")
    return as_int
