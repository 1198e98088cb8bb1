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
serializable, hashed by `config_hash`); `keras_kd.tools.run.runner.run(config)`
trains it. The schema is documented in docs/config.md.

This module holds the top level (`load`, `validate`, `config_hash`, `dump`);
the parts it calls live beside it: `files` (reading YAML/TOML and
`--set` overrides), `checker` (`ConfigError` and the problem
collector), `models` (teacher/student specs), `terms`
(`imports`, `method`, `terms` from the loss registry, weight schedules) and
`sections` (dataset, optimizer, export, teacher_cache).

Example:

```python
from keras_kd.tools.config import validate as config
cfg = config.load("recipes/digits_kd.yaml", overrides=["epochs=1"])
cfg["epochs"]          # 1
cfg["dataset"]["batch_size"]   # 32
```
"""

import hashlib
import json
import os

import yaml


from keras_kd.tools.config.checker import Checker, ConfigError, show_value
from keras_kd.tools.config.files import apply_overrides, parse_value, read
from keras_kd.tools.config.models import check_model, import_function, model_kind
from keras_kd.tools.config.sections import (
    AUGMENTS,
    DATASET_KEYS,
    EXPORT_FORMATS,
    EXPORT_KEYS,
    FULL_LOGIT_METHODS,
    FULL_LOGIT_TERMS,
    LR_SCHEDULES,
    OPTIMIZER_KEYS,
    OPTIMIZERS,
    TEACHER_CACHE_KEYS,
    check_dataset,
    check_export,
    check_optimizer,
    check_teacher_cache,
)
from keras_kd.tools.config.terms import (
    WEIGHT_SCHEDULES,
    check_imports,
    check_term,
    check_weight_schedule,
    method_names,
    term_class,
)

STRATEGIES = ("default", "mirrored")

TOP_KEYS = ("imports", "teacher", "student", "dataset", "method", "terms", "student_loss_weight",
            "student_loss_schedule", "optimizer", "epochs", "seed", "strategy",
            "mixed_precision", "jit_compile", "output_dir", "export", "teacher_cache")


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
    check = Checker()
    if not check.keys("", data, TOP_KEYS, required=("teacher", "student", "dataset", "epochs")):
        raise ConfigError(check.problems, source)
    out = {}
    # First: the terms of imported modules register themselves.
    out["imports"] = check_imports(check, data.get("imports"), search_path)
    out["teacher"] = check_model(check, "teacher", data.get("teacher"), check_files,
                                 search_path, allow_none=True)
    if "student" in data:  # a missing required key is reported once, above
        out["student"] = check_model(check, "student", data["student"], check_files,
                                     search_path, allow_none=False)
    out["dataset"] = check_dataset(check, data["dataset"]) if "dataset" in data else None
    epochs = check.number("epochs", data["epochs"], 1, integer=True) if "epochs" in data else None
    out["epochs"] = epochs
    method, terms = data.get("method"), data.get("terms")
    if method is not None and terms is not None:
        check.bad("method", "give either 'method' (a ready-made recipe) or 'terms', not both")
    if method is not None:
        check.choice("method", method, method_names())
    if terms is not None:
        if not isinstance(terms, list):
            check.bad("terms", f"expected a list of terms like [{{type: KD, temperature: 4}}], "
                      f"got {show_value(terms)}")
        else:
            for i, term in enumerate(terms):
                check_term(check, f"terms[{i}]", term)
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
    out["student_loss_schedule"] = check_weight_schedule(
        check, "student_loss_schedule", data.get("student_loss_schedule"))
    out["optimizer"] = check_optimizer(check, data.get("optimizer"), epochs)
    out["seed"] = check.number("seed", data.get("seed", 0), 0, integer=True)
    out["strategy"] = check.choice("strategy", data.get("strategy", "default"), STRATEGIES)
    out["mixed_precision"] = check.boolean("mixed_precision", data.get("mixed_precision", False))
    out["jit_compile"] = check.boolean("jit_compile", data.get("jit_compile", False))
    out["output_dir"] = check.string("output_dir", data.get("output_dir", "runs/run"))
    out["export"] = check_export(check, data.get("export"), out["output_dir"])
    out["teacher_cache"] = check_teacher_cache(check, data.get("teacher_cache"), data)
    if check.problems:
        raise ConfigError(check.problems, source)
    return out


def config_hash(config):
    """A short stable hash of a resolved config (sha256 of its sorted JSON)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def dump(config, path):
    """Writes a resolved config as YAML (re-loadable with `load`), beside
    `path` first, then renamed in."""
    from keras_kd.atomic import write_text

    write_text(path, yaml.safe_dump(config, sort_keys=False, default_flow_style=None))


__all__ = [
    "AUGMENTS",
    "DATASET_KEYS",
    "EXPORT_FORMATS",
    "EXPORT_KEYS",
    "FULL_LOGIT_METHODS",
    "FULL_LOGIT_TERMS",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "OPTIMIZER_KEYS",
    "STRATEGIES",
    "TEACHER_CACHE_KEYS",
    "TOP_KEYS",
    "WEIGHT_SCHEDULES",
    "ConfigError",
    "apply_overrides",
    "config_hash",
    "dump",
    "import_function",
    "load",
    "method_names",
    "model_kind",
    "parse_value",
    "read",
    "term_class",
    "validate",
]
