"""Every distillation term by name: the one table that run configs,
`keras-kd tune`/`bench` and error messages read.

Registration is explicit, as torchdistill's `@register_mid_level_loss`:
every term of keras-kd carries `@register_term` above its class, so this
table lists exactly the decorated classes. A user's own term decorated with
`@keras_kd.losses.register_term` is usable by name in a run config as soon
as its module is imported (`imports: [my_project.losses]` in the YAML); any
term, decorated or not, is usable as `"my_project.losses:MyTerm"`.

A name defined by two different classes (say a user's `KD` beside ours) is
never resolved silently: `get` refuses it and lists the `module:Class`
spellings to use instead.
"""

import difflib
import importlib
import inspect

from keras_kd.losses.base import DistillationLoss

_CLASSES = {}  # name -> {"module.qualname": class}


def register_term(cls):
    """Class decorator: registers a `DistillationLoss` subclass by its name.

    ```python
    @keras.saving.register_keras_serializable(package="my_project")
    @keras_kd.losses.register_term
    class MyTerm(keras_kd.losses.DistillationLoss):
        ...
    ```

    Raises:
        TypeError: `cls` is not a `DistillationLoss` subclass.
    """
    if not (inspect.isclass(cls) and issubclass(cls, DistillationLoss)):
        raise TypeError(
            f"register_term takes a keras_kd.losses.DistillationLoss subclass, got {cls!r}."
        )
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
            "module is imported (a run config's `imports:` list) if its class "
            "is decorated with @keras_kd.losses.register_term; or name it as "
            "'module:Class'."
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
