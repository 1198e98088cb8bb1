"""Model specs in a run config: a `.keras` file, a zoo name or `module:function`."""

import importlib
import os
import re
import sys

from keras_kd.tools.config.checker import did_you_mean, show_value


def model_kind(spec):
    """'keras' for a `.keras` path, 'function' for `module:function`, else 'zoo'."""
    if spec.endswith(".keras"):
        return "keras"
    if re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", spec):
        return "function"
    return "zoo"


def import_function(spec, search_path=()):
    """The callable named by `"package.module:function"`.

    The current directory and `search_path` are importable, so a `models.py`
    next to the config (or in the directory you run from) is found.
    """
    module_name, attr = spec.split(":", 1)
    make_importable(search_path)
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def make_importable(search_path):
    """The current directory and `search_path` become importable, so a
    `models.py` next to the config (or where you run) is found."""
    for folder in [os.getcwd(), *search_path]:
        if folder not in sys.path:
            sys.path.insert(0, folder)


def check_model(check, key, spec, check_files, search_path, allow_none):
    if spec is None:
        if not allow_none:
            check.bad(key, "expected a .keras file, a zoo name or module:function, got null")
        return None
    if not isinstance(spec, str) or not spec:
        check.bad(key, "expected a .keras file, a zoo name or module:function, got "
                  + show_value(spec))
        return None
    kind = model_kind(spec)
    if kind == "keras":
        if check_files and not os.path.isfile(spec):
            check.bad(key, f"file '{spec}' does not exist (relative paths are read from "
                      f"{os.getcwd()}); train and export it first, or give a zoo name "
                      "(keras-kd distill --validate-only --no-file-checks checks the rest)")
    elif kind == "function":
        module_name, attr = spec.split(":", 1)
        try:
            function = import_function(spec, search_path)
        except ModuleNotFoundError as error:
            check.bad(key, f"cannot import module '{module_name}' of '{spec}' ({error}); "
                      "run from the directory that holds it or install it")
            return spec
        except AttributeError:
            module = sys.modules.get(module_name)
            names = [n for n in dir(module) if not n.startswith("_")]
            check.bad(key, f"module '{module_name}' has no attribute '{attr}'"
                      + did_you_mean(attr, names))
            return spec
        except Exception as error:  # the user's module failed to import
            check.bad(key, f"importing '{module_name}' failed: {type(error).__name__}: {error}")
            return spec
        if not callable(function):
            check.bad(key, f"'{spec}' is not callable; it must be a function returning a "
                      "keras.Model")
    else:
        from keras_kd import zoo

        if spec not in zoo.NAMES:
            check.bad(key, f"'{spec}' is not a .keras file, a zoo name or module:function"
                      + did_you_mean(spec, zoo.NAMES) + f" (zoo names: {', '.join(zoo.NAMES)})")
    return spec
