"""Old import paths of modules that moved in 0.2, kept for one release.

`import keras_kd.bench` (and `python -m keras_kd.cli`) still work: a finder
answers the old name with the module at its new path (the same module
object, so monkeypatching either name patches both) and warns once with a
`DeprecationWarning`. The old files are gone, so nothing at the old paths
can drift from the new ones. Remove in 0.3.
"""

import importlib
import importlib.abc
import importlib.util
import sys
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
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new} in keras-kd 0.2; the old name will "
            "be removed in 0.3.",
            DeprecationWarning,
            stacklevel=3,
        )
        module = importlib.import_module(new)
        self._real_spec = module.__spec__
        return module

    def exec_module(self, module):
        # The import system stamped the alias spec on the real module; give
        # it back its own (the module was executed at its new path already).
        module.__spec__ = importlib.util.find_spec(module.__name__)

    def get_code(self, fullname):
        # `python -m keras_kd.cli` runs the moved module's code as __main__.
        spec = importlib.util.find_spec(MOVED[fullname])
        return spec.loader.get_code(MOVED[fullname])


def install():
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
