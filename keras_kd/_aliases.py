"""Old import paths of modules and functions renamed in 0.2, kept for one
release.

`import keras_kd.bench` (and `python -m keras_kd.cli`) still work: a finder
answers the old name with the module at its new path (the same module
object, so monkeypatching either name patches both) and warns once with a
`DeprecationWarning`. The old files are gone, so nothing at the old paths
can drift from the new ones. Remove in 0.3.

A module split in several (`keras_kd.validation`) maps to a tuple of new
modules: the old name is then a small module that reads each name from
the first new module that has it (live, so it never holds a stale copy).

A renamed function (the losses' `*_per_sample`, now `<name>_loss`) is
`renamed_function(new, "old_name")`, defined at the function's own place.
"""

import functools
import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED = {
    "keras_kd.schedules": "keras_kd.regimes.schedules",
    "keras_kd.stages": "keras_kd.regimes.stages",
    "keras_kd.self_distillation": "keras_kd.regimes.self_distillation",
    "keras_kd.methods": "keras_kd.zoo.recipes",
    "keras_kd.teacher_cache": "keras_kd.teachers.caching",
    "keras_kd.cli": "keras_kd.tools.cli",
    "keras_kd.config": "keras_kd.tools.config",
    "keras_kd.run_config": "keras_kd.tools.run_config",
    "keras_kd.bench": "keras_kd.tools.bench",
    "keras_kd.bench_report": "keras_kd.tools.bench_report",
    "keras_kd.demo": "keras_kd.tools.demo",
    "keras_kd.timing": "keras_kd.tools.timing",
    "keras_kd.tune": "keras_kd.tools.tune",
    "keras_kd.scalars": "keras_kd.checks.numbers",
    "keras_kd.compile_checks": "keras_kd.checks.compile",
    "keras_kd.guards": "keras_kd.checks.guards",
    "keras_kd.validation": (
        "keras_kd.checks.data", "keras_kd.checks.batches", "keras_kd.checks.terms",
    ),
}


def _split_module(name, targets):
    """A module named `name` whose attributes are read from `targets`."""
    modules = [importlib.import_module(target) for target in targets]
    module = types.ModuleType(name, f"Moved to {', '.join(targets)}; see keras_kd.checks.")

    def __getattr__(attribute):
        for source in modules:
            if hasattr(source, attribute):
                return getattr(source, attribute)
        raise AttributeError(f"module {name!r} has no attribute {attribute!r}")

    def __dir__():
        return sorted({a for source in modules for a in dir(source)})

    module.__getattr__ = __getattr__
    module.__dir__ = __dir__
    return module


def renamed_function(function, old_name, then=None):
    """`function` under its 0.1 name `old_name`, warning once per call site.

    Used for the loss functions' `*_per_sample` names (and `feature_mse`),
    which became `<name>_loss` in 0.2. `then` maps the new result to what the
    old name returned (`keras.ops.mean` for a name that returned the batch
    mean). The wrapper carries `__deprecated__` (PEP 702) and `__wrapped__`.
    """
    new_name = function.__name__
    message = (
        f"{old_name} is renamed {new_name} in keras-kd 0.2; the old name will be "
        "removed in 0.3."
    )

    @functools.wraps(function)
    def old(*args, **kwargs):
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        result = function(*args, **kwargs)
        return result if then is None else then(result)

    old.__name__ = old.__qualname__ = old_name
    old.__doc__ = f"Deprecated: {message}" + (
        "" if then is None else f" Returns `{getattr(then, '__name__', then)}` of its result.")
    old.__deprecated__ = message
    return old


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {' and '.join(new) if isinstance(new, tuple) else new} "
            "in keras-kd 0.2; the old name will "
            "be removed in 0.3.",
            DeprecationWarning,
            stacklevel=3,
        )
        if isinstance(new, tuple):
            return _split_module(spec.name, new)
        return importlib.import_module(new)

    def exec_module(self, module):
        # The import system stamped the alias spec on the real module; give
        # it back its own (the module was executed at its new path already).
        if module.__name__ != module.__spec__.name:
            module.__spec__ = importlib.util.find_spec(module.__name__)

    def get_code(self, fullname):
        # `python -m keras_kd.cli` runs the moved module's code as __main__.
        spec = importlib.util.find_spec(MOVED[fullname])
        return spec.loader.get_code(MOVED[fullname])


def install():
    # First in line: a stale file at an old path (left by an earlier install,
    # or another checkout's editable-install finder) must not win.
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())
