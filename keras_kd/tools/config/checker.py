"""`ConfigError` and the `Checker` that collects a config's problems.

Every check records its problem under the dotted key it concerns
(`terms[1].temperature: expected a number > 0, got 'four' (str)`) and goes
on, so that `keras_kd.tools.config.validate` reports all of them at once.
"""

import difflib
import math

from keras_kd.checks.numbers import is_real


class ConfigError(ValueError):
    """Every problem found in a config, one per line, each naming its key."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        where = f" in {source}" if source else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}{where}:"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


class Checker:
    """Collects problems; each method returns the checked (normalized) value,
    or records a problem and returns None."""

    def __init__(self):
        self.problems = []

    def bad(self, key, message):
        self.problems.append(f"{key}: {message}")

    def keys(self, key, mapping, allowed, required=()):
        if not isinstance(mapping, dict):
            self.bad(key, f"expected a mapping, got {show_value(mapping)}")
            return False
        for name in mapping:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                self.bad(where, "unknown key" + did_you_mean(name, allowed)
                         + f" (allowed: {', '.join(allowed)})")
        for name in required:
            if name not in mapping:
                self.bad(f"{key}.{name}" if key else name, "required key is missing")
        return True

    def number(self, key, value, minimum=None, strict=False, maximum=None, integer=False):
        kind = "an integer" if integer else "a number"
        bound = ""
        if minimum is not None:
            bound = f" {'>' if strict else '>='} {minimum:g}"
        if maximum is not None:
            bound += f"{' and' if bound else ''} <= {maximum:g}"
        expect = f"expected {kind}{bound}, got {show_value(value)}"
        if not is_real(value):
            self.bad(key, expect)
            return None
        if integer and not float(value).is_integer():
            self.bad(key, expect)
            return None
        if not math.isfinite(value) or (minimum is not None and (
                value <= minimum if strict else value < minimum)) or (
                maximum is not None and value > maximum):
            self.bad(key, expect)
            return None
        return int(value) if integer else float(value)

    def kind(self, key, raw, kinds):
        """The `type` of a `{type: ..., ...}` mapping, one of `kinds`; None,
        with the problem recorded, when `raw` is no mapping or the type is unknown."""
        if not isinstance(raw, dict):
            self.bad(key, f"expected a mapping with a 'type' ({', '.join(kinds)}), "
                     f"got {show_value(raw)}")
            return None
        return self.choice(f"{key}.type", raw.get("type"), kinds)

    def boolean(self, key, value):
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {show_value(value)}")
            return None
        return value

    def choice(self, key, value, choices):
        if value not in choices:
            self.bad(key, f"expected one of {', '.join(map(str, choices))}, got {show_value(value)}"
                     + (did_you_mean(value, choices) if isinstance(value, str) else ""))
            return None
        return value

    def string(self, key, value, allow_none=False):
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value:
            self.bad(key, f"expected a non-empty string, got {show_value(value)}")
            return None
        return value

    def number_list(self, key, value, minimum=0, integer=False, increasing=False):
        if not isinstance(value, list):
            self.bad(key, f"expected a list of numbers, got {show_value(value)}")
            return None
        out = [self.number(f"{key}[{i}]", v, minimum=minimum, integer=integer)
               for i, v in enumerate(value)]
        if any(v is None for v in out):
            return None
        if increasing and any(b <= a for a, b in zip(out, out[1:])):
            self.bad(key, f"expected strictly increasing values, got {value}")
            return None
        return out


def show_value(value):
    """`value` as a message shows it: its repr and type, or null."""
    return f"{value!r} ({type(value).__name__})" if value is not None else "null"


def did_you_mean(name, options):
    """"; did you mean 'X'?" for the option closest to a misspelt `name`, or ""."""
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
