"""The `imports:`, `method:` and `terms:` of a run config, read from the registry.

A term's `type:` is looked up in `keras_kd.losses.registry` (a registered
class name, or `"module:Class"`); its keys are the class's constructor
arguments, and the class itself checks their values last. `imports:` lists
modules whose own terms register themselves. Weight schedules (`schedule:`
of a term, `student_loss_schedule`) are checked here too.
"""

import importlib

from keras_kd.losses import registry
from keras_kd.zoo import recipes

from keras_kd.tools.config.checker import show_value
from keras_kd.tools.config.models import make_importable

WEIGHT_SCHEDULES = ("constant", "linear_warmup", "piecewise")

# Constructor arguments checked before the class itself sees them.
_POSITIVE = ("temperature", "eps", "p")
_NON_NEGATIVE = ("weight", "alpha", "beta", "gamma", "warmup_epochs", "distance_weight",
                 "angle_weight")
_LAYER = ("teacher_layer", "student_layer")
_LAYERS = ("teacher_layers", "student_layers")


def term_class(kind):
    """The `DistillationLoss` class a config's `type:` names, from the
    registry (`keras_kd.losses.registry`): a registered class name, or
    `"module:Class"`."""
    return registry.get(kind)


def method_names():
    """The ready-made recipes a config's `method:` may name."""
    return tuple(recipes.METHODS)


def check_imports(check, raw, search_path):
    """Imports the modules listed under `imports:` (their terms register
    themselves); returns the list."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        check.bad("imports", f"expected a list of module names, got {show_value(raw)}")
        return []
    make_importable(search_path)
    for i, module in enumerate(raw):
        try:
            importlib.import_module(module)
        except ImportError as error:
            check.bad(f"imports[{i}]", f"cannot import '{module}': {error}")
    return raw


def check_term(check, key, raw):
    if not isinstance(raw, dict):
        check.bad(key, "expected a mapping like {type: KD, temperature: 4}, got "
                  + show_value(raw))
        return None
    kind = raw.get("type")
    if kind is None:
        check.bad(f"{key}.type", "required key is missing (one of "
                  f"{', '.join(registry.names())}, or 'module:Class')")
        return None
    try:
        cls = term_class(kind)
    except (TypeError, ValueError, ImportError) as error:
        check.bad(f"{key}.type", str(error))
        return None
    arguments = registry.arguments(cls)
    before = len(check.problems)
    check.keys(key, raw, ["type", "schedule", *arguments])
    for name, value in raw.items():
        where = f"{key}.{name}"
        if name in _POSITIVE:
            check.number(where, value, 0, strict=True)
        elif name in _NON_NEGATIVE:
            check.number(where, value, 0)
        elif name in _LAYER or name == "name":
            check.string(where, value)
        elif name in _LAYERS:
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, str) and v for v in value):
                check.bad(where, f"expected a list of layer names, got {show_value(value)}")
        elif name == "bn_layers":
            if value != "auto" and not (isinstance(value, list) and all(
                    isinstance(v, str) for v in value)):
                check.bad(where, f"expected 'auto' or a list of BatchNormalization layer "
                          f"names, got {show_value(value)}")
    check_weight_schedule(check, f"{key}.schedule", raw.get("schedule"))
    if len(check.problems) == before:
        kwargs = {k: v for k, v in raw.items() if k not in ("type", "schedule")}
        if kwargs.get("bn_layers") == "auto":
            kwargs.pop("bn_layers")
        if kind == "FSP" and isinstance(kwargs.get("pairs"), list):
            kwargs["pairs"] = [tuple(p) if isinstance(p, list) else p for p in kwargs["pairs"]]
        try:
            cls(**kwargs)  # the class's own checks, with its own messages
        except (TypeError, ValueError) as error:
            check.bad(key, f"{kind}(...) refused the arguments: {error}")
    return raw


def check_weight_schedule(check, key, raw):
    """A weight schedule: {type: constant|linear_warmup|piecewise, ...}; its
    values are factors of the term's weight."""
    if raw is None:
        return None
    kind = check.kind(key, raw, WEIGHT_SCHEDULES)
    if not isinstance(raw, dict):
        return None
    if kind == "constant":
        check.keys(key, raw, ("type",))
    elif kind == "linear_warmup":
        check.keys(key, raw, ("type", "warmup_epochs", "start"), required=("warmup_epochs",))
        check.number(f"{key}.warmup_epochs", raw.get("warmup_epochs", 0), 0)
        check.number(f"{key}.start", raw.get("start", 0.0), 0)
    elif kind == "piecewise":
        check.keys(key, raw, ("type", "boundaries_epochs", "factors"),
                   required=("boundaries_epochs", "factors"))
        bounds = check.number_list(f"{key}.boundaries_epochs", raw.get("boundaries_epochs", []),
                                   0, integer=True, increasing=True)
        factors = check.number_list(f"{key}.factors", raw.get("factors", []), 0)
        if bounds is not None and factors is not None and len(factors) != len(bounds) + 1:
            check.bad(f"{key}.factors", f"expected {len(bounds) + 1} factors (one more than "
                      f"boundaries_epochs), got {len(factors)}")
    return raw
