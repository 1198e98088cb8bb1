"""Run configuration files for `keras-kd distill`: load, override, validate.

One YAML (`.yaml`/`.yml`) or TOML (`.toml`) file describes a whole run:
teacher, student, dataset, distillation terms, optimizer, epochs and where
the results go. `load(path)` reads it, applies `--set`-style overrides and
validates EVERYTHING before anything is built; every problem is reported at
once, each with its dotted key, in one `ConfigError` (a `ValueError`):

    3 problems in recipes/my_run.yaml:
      - terms[1].temperature: expected a number > 0, got 'four' (str)
      - optimzer: unknown key; did you mean 'optimizer'?
      - student: 'resnet8' is not a .keras file, a zoo name or module:function; did you mean 'resnet8x4'?

The validated config is a plain dict with every default filled in (JSON
serializable, hashed by `config_hash`); `keras_kd.run_config.run(config)`
trains it. The schema is documented in docs/config.md.

Example:

```python
from keras_kd import config
cfg = config.load("recipes/digits_kd.yaml", overrides=["epochs=1"])
cfg["epochs"]          # 1
cfg["dataset"]["batch_size"]   # 32
```
"""

import copy
import difflib
import hashlib
import importlib
import inspect
import json
import math
import os
import re
import sys

import yaml

METHODS = ("scratch", "kd", "kd_ls", "dist", "fitnet", "fsp", "overhaul", "review", "at", "rkd",
           "pkt", "sp", "dkd", "dkd_ls", "nkd")  # keras_kd.methods.METHODS, without TensorFlow
TERM_TYPES = ("KD", "DKD", "NKD", "FeatureMSE", "FitNet", "FSP", "Overhaul", "ReviewKD",
              "AttentionTransfer", "RKD", "PKT", "SP", "DIST")
OPTIMIZERS = ("sgd", "adam", "adamw")
EXPORT_FORMATS = ("keras", "savedmodel", "tflite")
AUGMENTS = ("none", "cifar")
STRATEGIES = ("default", "mirrored")

TOP_KEYS = ("teacher", "student", "dataset", "method", "terms", "student_loss_weight",
            "student_loss_schedule", "optimizer", "epochs", "seed", "strategy",
            "mixed_precision", "jit_compile", "output_dir", "export")
DATASET_KEYS = ("name", "data_dir", "batch_size", "train_split", "test_split", "augment",
                "shuffle_buffer", "normalize", "input_shape", "num_classes")
OPTIMIZER_KEYS = ("name", "learning_rate", "momentum", "nesterov", "weight_decay",
                  "weight_decay_mode", "schedule")
EXPORT_KEYS = ("formats", "path")
WEIGHT_SCHEDULES = ("constant", "linear_warmup", "piecewise")
LR_SCHEDULES = ("constant", "piecewise", "cosine")


class ConfigError(ValueError):
    """Every problem found in a config, one per line, each naming its key."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        where = f" in {source}" if source else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}{where}:"
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))


# ----------------------------------------------------------------------------
# Reading files and overrides.

class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-4` as a string; read it as a float (YAML 1.2)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_value(text):
    """A `--set` value as YAML: `0.5` -> 0.5, `5e-4` -> 0.0005, `null` -> None,
    `[150, 180]` -> a list, anything else a string."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def read(path):
    """The raw mapping in a `.yaml`/`.yml`/`.toml` file (not validated)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError([f"config file '{path}' does not exist"])
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".toml":
            import tomllib

            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        elif ext in (".yaml", ".yml"):
            with open(path, encoding="utf-8") as handle:
                data = yaml.load(handle, Loader=_Loader)
        else:
            raise ConfigError([f"config file '{path}': expected a .yaml, .yml or .toml file"])
    except ConfigError:
        raise
    except Exception as error:  # yaml.YAMLError, tomllib.TOMLDecodeError
        raise ConfigError([f"cannot parse: {error}"], source=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"the file must hold a mapping of keys, got {type(data).__name__}"],
                          source=path)
    return data


_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)?((?:\[\d+\])*)$")


def _split_key(key):
    parts = []
    for piece in key.split("."):
        if piece.isdigit():
            parts.append(int(piece))
            continue
        match = _PART.match(piece)
        if not match or not (match.group(1) or match.group(2)):
            raise ConfigError([f"--set {key}: '{piece}' is not a key or [index]"])
        if match.group(1):
            parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def apply_overrides(data, overrides):
    """Returns a copy of `data` with `["dataset.batch_size=32", ...]` applied.

    Keys are dotted paths; list items are `terms[0].weight` or `terms.0.weight`;
    values are read as YAML (`parse_value`). Missing mappings are created.

    >>> apply_overrides({"dataset": {"name": "digits"}}, ["dataset.batch_size=32"])
    {'dataset': {'name': 'digits', 'batch_size': 32}}
    """
    data = copy.deepcopy(data)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. dataset.batch_size=32"])
        key, text = item.split("=", 1)
        parts = _split_key(key.strip())
        node = data
        for depth, part in enumerate(parts[:-1]):
            where = ".".join(str(p) for p in parts[: depth + 1])
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise ConfigError([f"--set {key}: '{where}' is not an existing list item"])
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise ConfigError([f"--set {key}: '{where}' is inside a non-mapping"])
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ConfigError([f"--set {key}: no list item {last} to set"])
        elif not isinstance(node, dict):
            raise ConfigError([f"--set {key}: cannot set '{last}' inside a non-mapping"])
        node[last] = parse_value(text)
    return data


def load(path, overrides=None, check_files=True):
    """Reads, overrides and validates a config file; returns the resolved dict.

    Relative paths in the file (models, data_dir, output_dir, export path)
    are read from the current directory, like any command line tool's.
    `output_dir` defaults to `runs/<file stem>`.
    """
    data = apply_overrides(read(path), overrides)
    data.setdefault("output_dir", os.path.join("runs", os.path.splitext(os.path.basename(path))[0]))
    return validate(data, check_files=check_files, source=os.fspath(path),
                    search_path=[os.path.dirname(os.path.abspath(path))])


# ----------------------------------------------------------------------------
# Validation helpers: each returns the (possibly normalized) value or records
# a problem and returns None.

class _Checker:
    def __init__(self):
        self.problems = []

    def bad(self, key, message):
        self.problems.append(f"{key}: {message}")

    def keys(self, key, mapping, allowed, required=()):
        if not isinstance(mapping, dict):
            self.bad(key, f"expected a mapping, got {_show(mapping)}")
            return False
        for name in mapping:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                self.bad(where, "unknown key" + _suggest(name, allowed)
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
        expect = f"expected {kind}{bound}, got {_show(value)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
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

    def boolean(self, key, value):
        if not isinstance(value, bool):
            self.bad(key, f"expected true or false, got {_show(value)}")
            return None
        return value

    def choice(self, key, value, choices):
        if value not in choices:
            self.bad(key, f"expected one of {', '.join(map(str, choices))}, got {_show(value)}"
                     + (_suggest(value, choices) if isinstance(value, str) else ""))
            return None
        return value

    def string(self, key, value, allow_none=False):
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value:
            self.bad(key, f"expected a non-empty string, got {_show(value)}")
            return None
        return value

    def number_list(self, key, value, minimum=0, integer=False, increasing=False):
        if not isinstance(value, list):
            self.bad(key, f"expected a list of numbers, got {_show(value)}")
            return None
        out = [self.number(f"{key}[{i}]", v, minimum=minimum, integer=integer)
               for i, v in enumerate(value)]
        if any(v is None for v in out):
            return None
        if increasing and any(b <= a for a, b in zip(out, out[1:])):
            self.bad(key, f"expected strictly increasing values, got {value}")
            return None
        return out


def _show(value):
    return f"{value!r} ({type(value).__name__})" if value is not None else "null"


def _suggest(name, options):
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# ----------------------------------------------------------------------------
# Models.

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
    for folder in [os.getcwd(), *search_path]:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def _check_model(check, key, spec, check_files, search_path, allow_none):
    if spec is None:
        if not allow_none:
            check.bad(key, "expected a .keras file, a zoo name or module:function, got null")
        return None
    if not isinstance(spec, str) or not spec:
        check.bad(key, "expected a .keras file, a zoo name or module:function, got "
                  + _show(spec))
        return None
    kind = model_kind(spec)
    if kind == "keras":
        if check_files and not os.path.isfile(spec):
            check.bad(key, f"file '{spec}' does not exist (relative paths are read from "
                      f"{os.getcwd()}); train and export it first, or give a zoo name")
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
                      + _suggest(attr, names))
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
                      + _suggest(spec, zoo.NAMES) + f" (zoo names: {', '.join(zoo.NAMES)})")
    return spec


# ----------------------------------------------------------------------------
# Sections.

def _check_dataset(check, raw):
    out = {"name": None, "data_dir": None, "batch_size": 64, "train_split": "train",
           "test_split": "test", "augment": "none", "shuffle_buffer": 10000,
           "normalize": None, "input_shape": None, "num_classes": None}
    if not check.keys("dataset", raw, DATASET_KEYS, required=("name",)):
        return out
    out.update({k: v for k, v in raw.items() if k in DATASET_KEYS})
    out["name"] = check.string("dataset.name", out["name"])
    out["data_dir"] = check.string("dataset.data_dir", out["data_dir"], allow_none=True)
    out["batch_size"] = check.number("dataset.batch_size", out["batch_size"], 1, integer=True)
    for split in ("train_split", "test_split"):
        out[split] = check.string(f"dataset.{split}", out[split])
    out["augment"] = check.choice("dataset.augment", out["augment"], AUGMENTS)
    out["shuffle_buffer"] = check.number("dataset.shuffle_buffer", out["shuffle_buffer"], 0,
                                         integer=True)
    norm = out["normalize"]
    if norm is not None:
        if check.keys("dataset.normalize", norm, ("mean", "std"), required=("mean", "std")):
            mean = check.number_list("dataset.normalize.mean", norm.get("mean"), 0)
            std = check.number_list("dataset.normalize.std", norm.get("std"), 0)
            if std is not None and any(s == 0 for s in std):
                check.bad("dataset.normalize.std", f"expected numbers > 0, got {std}")
            if mean is not None and std is not None and len(mean) != len(std):
                check.bad("dataset.normalize", f"mean has {len(mean)} values, std {len(std)}")
            out["normalize"] = {"mean": mean, "std": std}
    if out["input_shape"] is not None:
        shape = check.number_list("dataset.input_shape", out["input_shape"], 1, integer=True)
        out["input_shape"] = shape
    if out["num_classes"] is not None:
        out["num_classes"] = check.number("dataset.num_classes", out["num_classes"], 1,
                                          integer=True)
    return out


def _check_weight_schedule(check, key, raw):
    """A weight schedule: {type: constant|linear_warmup|piecewise, ...}; its
    values are factors of the term's weight."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        check.bad(key, f"expected a mapping with a 'type' ({', '.join(WEIGHT_SCHEDULES)}), "
                  f"got {_show(raw)}")
        return None
    kind = check.choice(f"{key}.type", raw.get("type"), WEIGHT_SCHEDULES)
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


# Constructor arguments checked before the class itself sees them.
_POSITIVE = ("temperature", "eps", "p")
_NON_NEGATIVE = ("weight", "alpha", "beta", "gamma", "warmup_epochs", "distance_weight",
                 "angle_weight")
_LAYER = ("teacher_layer", "student_layer")
_LAYERS = ("teacher_layers", "student_layers")


def term_classes():
    """{type name: class} of the `DistillationLoss` classes a config may name."""
    from keras_kd import losses

    return {name: getattr(losses, name) for name in TERM_TYPES}


def term_arguments(cls):
    """The keyword arguments a term class accepts (from its signature)."""
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def _check_term(check, key, raw):
    if not isinstance(raw, dict):
        check.bad(key, f"expected a mapping like {{type: KD, temperature: 4}}, got {_show(raw)}")
        return None
    kind = raw.get("type")
    if kind is None:
        check.bad(f"{key}.type", f"required key is missing (one of {', '.join(TERM_TYPES)})")
        return None
    if kind not in TERM_TYPES:
        check.bad(f"{key}.type", f"unknown term type {_show(kind)}" + _suggest(kind, TERM_TYPES)
                  + f" (known: {', '.join(TERM_TYPES)})")
        return None
    cls = term_classes()[kind]
    arguments = term_arguments(cls)
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
                check.bad(where, f"expected a list of layer names, got {_show(value)}")
        elif name == "bn_layers":
            if value != "auto" and not (isinstance(value, list) and all(
                    isinstance(v, str) for v in value)):
                check.bad(where, f"expected 'auto' or a list of BatchNormalization layer "
                          f"names, got {_show(value)}")
    _check_weight_schedule(check, f"{key}.schedule", raw.get("schedule"))
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


def _check_optimizer(check, raw, epochs):
    out = {"name": "adam", "learning_rate": 0.001, "momentum": 0.0, "nesterov": False,
           "weight_decay": 0.0, "weight_decay_mode": None, "schedule": None}
    if raw is None:
        raw = {}
    if not check.keys("optimizer", raw, OPTIMIZER_KEYS):
        return out
    out.update(raw)
    name = check.choice("optimizer.name", out["name"], OPTIMIZERS)
    check.number("optimizer.learning_rate", out["learning_rate"], 0, strict=True)
    check.number("optimizer.momentum", out["momentum"], 0, maximum=1)
    check.boolean("optimizer.nesterov", out["nesterov"])
    check.number("optimizer.weight_decay", out["weight_decay"], 0)
    if name not in (None, "sgd") and (out["momentum"] or out["nesterov"] is True):
        check.bad("optimizer.momentum" if out["momentum"] else "optimizer.nesterov",
                  f"applies to sgd only, not {name}")
    if out["weight_decay_mode"] is None:
        out["weight_decay_mode"] = "decoupled" if name == "adamw" else "coupled"
    check.choice("optimizer.weight_decay_mode", out["weight_decay_mode"], ("coupled", "decoupled"))
    schedule = out["schedule"]
    if schedule is not None:
        key = "optimizer.schedule"
        if not isinstance(schedule, dict):
            check.bad(key, f"expected a mapping with a 'type' ({', '.join(LR_SCHEDULES)}), "
                      f"got {_show(schedule)}")
            return out
        kind = check.choice(f"{key}.type", schedule.get("type"), LR_SCHEDULES)
        if kind == "constant":
            check.keys(key, schedule, ("type",))
        elif kind == "cosine":
            check.keys(key, schedule, ("type", "min_learning_rate"))
            check.number(f"{key}.min_learning_rate", schedule.get("min_learning_rate", 0.0), 0)
        elif kind == "piecewise":
            check.keys(key, schedule, ("type", "boundaries_epochs", "factor", "factors"),
                       required=("boundaries_epochs",))
            bounds = check.number_list(f"{key}.boundaries_epochs",
                                       schedule.get("boundaries_epochs"), 1, integer=True,
                                       increasing=True)
            if ("factor" in schedule) == ("factors" in schedule):
                check.bad(key, "give exactly one of 'factor' (multiplied in at every "
                          "boundary) or 'factors' (one per interval)")
            elif "factor" in schedule:
                check.number(f"{key}.factor", schedule["factor"], 0, strict=True)
            else:
                factors = check.number_list(f"{key}.factors", schedule["factors"], 0)
                if bounds is not None and factors is not None and len(factors) != len(bounds) + 1:
                    check.bad(f"{key}.factors", f"expected {len(bounds) + 1} factors (one "
                              f"more than boundaries_epochs), got {len(factors)}")
    return out


def _check_export(check, raw, output_dir):
    out = {"formats": ["keras"], "path": None}
    if raw is None:
        raw = {}
    if not check.keys("export", raw, EXPORT_KEYS):
        return out
    out.update(raw)
    formats = out["formats"]
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list):
        check.bad("export.formats", f"expected a list of {', '.join(EXPORT_FORMATS)}, "
                  f"got {_show(formats)}")
        formats = []
    for i, fmt in enumerate(formats):
        check.choice(f"export.formats[{i}]", fmt, EXPORT_FORMATS)
    out["formats"] = formats
    if out["path"] is None and isinstance(output_dir, str):
        out["path"] = os.path.join(output_dir, "student")
    path = check.string("export.path", out["path"])
    if path and path.endswith((".keras", ".tflite")):
        check.bad("export.path", f"give the path without extension ('{os.path.splitext(path)[0]}'):"
                  " .keras/.tflite are added per format, a SavedModel is the bare path")
    return out


def validate(data, check_files=True, source=None, search_path=()):
    """Checks a raw config mapping; returns it resolved (defaults filled in).

    Raises one `ConfigError` listing every problem, each starting with the
    dotted key (e.g. `terms[1].temperature: expected a number > 0, got 'four'`).
    With `check_files=False`, `.keras` model files need not exist yet (the
    recipe smoke tests, a teacher that an earlier run will export).

    >>> validate({"teacher": None, "student": "digits_student",
    ...           "dataset": {"name": "digits"}, "epochs": 2})["optimizer"]["name"]
    'adam'
    """
    check = _Checker()
    if not check.keys("", data, TOP_KEYS, required=("teacher", "student", "dataset", "epochs")):
        raise ConfigError(check.problems, source)
    out = {}
    out["teacher"] = _check_model(check, "teacher", data.get("teacher"), check_files,
                                  search_path, allow_none=True)
    if "student" in data:  # a missing required key is reported once, above
        out["student"] = _check_model(check, "student", data["student"], check_files,
                                      search_path, allow_none=False)
    out["dataset"] = _check_dataset(check, data["dataset"]) if "dataset" in data else None
    epochs = check.number("epochs", data["epochs"], 1, integer=True) if "epochs" in data else None
    out["epochs"] = epochs
    method, terms = data.get("method"), data.get("terms")
    if method is not None and terms is not None:
        check.bad("method", "give either 'method' (a ready-made recipe) or 'terms', not both")
    if method is not None:
        check.choice("method", method, METHODS)
    if terms is not None:
        if not isinstance(terms, list):
            check.bad("terms", f"expected a list of terms like [{{type: KD, temperature: 4}}], "
                      f"got {_show(terms)}")
        else:
            for i, term in enumerate(terms):
                _check_term(check, f"terms[{i}]", term)
            names = [t.get("name") or t.get("type") for t in terms if isinstance(t, dict)]
            for dup in sorted({n for n in names if names.count(n) > 1}):
                check.bad("terms", f"two terms are named '{dup}'; give each a distinct 'name'")
    if data.get("teacher") is None and (terms or method not in (None, "scratch")):
        check.bad("teacher", "is null (train the student alone) but "
                  + ("'terms'" if terms else f"method '{method}'") + " needs a teacher; "
                  "name a teacher or remove them")
    if data.get("teacher") is not None and method is None and terms is None:
        check.bad("terms", "a teacher is named but neither 'method' nor 'terms' says how to "
                  "distil it; add e.g. terms: [{type: KD, temperature: 4}]")
    out["method"] = method
    out["terms"] = terms if terms is not None else []
    out["student_loss_weight"] = check.number("student_loss_weight",
                                              data.get("student_loss_weight", 1.0), 0)
    out["student_loss_schedule"] = _check_weight_schedule(
        check, "student_loss_schedule", data.get("student_loss_schedule"))
    out["optimizer"] = _check_optimizer(check, data.get("optimizer"), epochs)
    out["seed"] = check.number("seed", data.get("seed", 0), 0, integer=True)
    out["strategy"] = check.choice("strategy", data.get("strategy", "default"), STRATEGIES)
    out["mixed_precision"] = check.boolean("mixed_precision", data.get("mixed_precision", False))
    out["jit_compile"] = check.boolean("jit_compile", data.get("jit_compile", False))
    out["output_dir"] = check.string("output_dir", data.get("output_dir", "runs/run"))
    out["export"] = _check_export(check, data.get("export"), out["output_dir"])
    if check.problems:
        raise ConfigError(check.problems, source)
    return out


def config_hash(config):
    """A short stable hash of a resolved config (sha256 of its sorted JSON)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def dump(config, path):
    """Writes a resolved config as YAML (re-loadable with `load`)."""
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False, default_flow_style=None)
