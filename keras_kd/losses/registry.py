"""Every distillation term by name: the one table that run configs,
`keras-kd tune`/`bench` and error messages read.

Terms register themselves: every subclass of `DistillationLoss` is added
when its class is created (a name starting with "_", or `abstract = True` in
the class body, opts out). So a user's own term is usable by name in a run
config as soon as its module is imported (`imports: [my_project.losses]` in
the YAML), or by `"my_project.losses:MyTerm"` without that.

A name defined by two different classes (say a user's `KD` beside ours) is
never resolved silently: `get` refuses it and lists the `module:Class`
spellings to use instead.
"""

import difflib
import importlib
import inspect

_CLASSES = {}  # name -> {"module.qualname": class}


def add(cls):
    """Registers `cls` under its class name (done by `DistillationLoss`)."""
    key = f"{cls.__module__}.{cls.__qualname__}"
    _CLASSES.setdefault(cls.__name__, {})[key] = cls  # a re-definition replaces
    return cls


def names():
    """The registered term names, sorted."""
    return tuple(sorted(_CLASSES))


def _suggest(name):
    close = difflib.get_close_matches(name, names(), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def get(name):
    """The term class called `name`, or named by `"module:Class"`.

    Raises:
        ValueError: unknown or ambiguous name (the message lists the names,
            or the `module:Class` spellings that disambiguate).
        TypeError: `"module:Class"` names something that is not a term.
    """
    from keras_kd.losses.base import DistillationLoss

    if not isinstance(name, str) or not name:
        raise TypeError(f"A term type is a class name such as 'KD', got {name!r}.")
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"Cannot import the term '{name}': {error}.") from None
        if not (inspect.isclass(cls) and issubclass(cls, DistillationLoss)):
            raise TypeError(
                f"'{name}' is {cls!r}, not a keras_kd.losses.DistillationLoss subclass."
            )
        return cls
    found = _CLASSES.get(name)
    if not found:
        raise ValueError(
            f"Unknown term type '{name}'.{_suggest(name)} Known: "
            f"{', '.join(names())}. A term of your own is known once its "
            "module is imported (a run config's `imports:` list), or name it "
            "as 'module:Class'."
        )
    if len(found) > 1:
        spellings = sorted(f"{c.__module__}:{c.__qualname__}" for c in found.values())
        raise ValueError(
            f"The term type '{name}' is defined by {len(found)} classes: "
            f"{spellings}. Name the one you mean as 'module:Class'."
        )
    return next(iter(found.values()))


def arguments(cls):
    """The keyword arguments a term class accepts (from its signature)."""
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
