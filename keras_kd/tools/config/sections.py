"""The `dataset`, `optimizer`, `export` and `teacher_cache` sections of a run config.

Each `check_<section>` returns the section with its defaults filled in and
records every problem in the `Checker` it is given.
"""

import os

from keras_kd import datasets
from keras_kd.checks.numbers import is_real
from keras_kd.tools.config.checker import show_value

OPTIMIZERS = ("sgd", "adam", "adamw")
EXPORT_FORMATS = ("keras", "savedmodel", "tflite")
AUGMENTS = ("none", "cifar")
LR_SCHEDULES = ("constant", "piecewise", "cosine")

DATASET_KEYS = ("name", "data_dir", "batch_size", "train_split", "test_split", "validation_split",
                "validation", "augment", "shuffle_buffer", "normalize", "input_shape",
                "num_classes")
# The splits of the embedded dataset, and those a validation set may be (any other
# name's splits are known when it loads).
KNOWN_SPLITS = {"digits": ("train", "test", "all")}
VALIDATION_SPLITS = {"digits": ()}
OPTIMIZER_KEYS = ("name", "learning_rate", "momentum", "nesterov", "weight_decay",
                  "weight_decay_mode", "schedule")
EXPORT_KEYS = ("formats", "path")
TEACHER_CACHE_KEYS = ("views", "top_k", "tail_bits", "path", "seed")
# Terms (and methods) that read the teacher's full logits: a top-k cache cannot feed them.
FULL_LOGIT_TERMS = ("KD", "DKD", "NKD", "DIST", "MLKD", "TTM", "WTTM")
FULL_LOGIT_METHODS = ("kd", "dkd", "nkd", "mlkd", "mlkd_ls", "wttm")


def check_dataset(check, raw):
    out = {"name": None, "data_dir": None, "batch_size": 64, "train_split": "train",
           "test_split": "test", "validation_split": None, "validation": None,
           "augment": "none", "shuffle_buffer": 10000, "normalize": None, "input_shape": None,
           "num_classes": None}
    if not check.keys("dataset", raw, DATASET_KEYS, required=("name",)):
        return out
    out.update({k: v for k, v in raw.items() if k in DATASET_KEYS})
    out["name"] = check.string("dataset.name", out["name"])
    out["data_dir"] = check.string("dataset.data_dir", out["data_dir"], allow_none=True)
    if out["name"] is not None:
        try:  # TFDS names are looked up in its registry: nothing is downloaded
            datasets.check_name(out["name"], out["data_dir"])
        except FileNotFoundError as error:
            check.bad("dataset.name", str(error))
    out["batch_size"] = check.number("dataset.batch_size", out["batch_size"], 1, integer=True)
    for split in ("train_split", "test_split"):
        out[split] = check.string(f"dataset.{split}", out[split])
    check_validation(check, out)
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


def check_validation(check, out):
    """`dataset.validation_split` (a fraction of the training split) or
    `dataset.validation` (a split of the dataset): at most one, never the test split."""
    fraction, split = out["validation_split"], out["validation"]
    if fraction is not None:
        if not is_real(fraction) or not 0 < fraction < 1:
            check.bad("dataset.validation_split", "expected a fraction of the training split, "
                      f"> 0 and < 1 (e.g. 0.1), got {show_value(fraction)}")
            out["validation_split"] = None
        else:
            out["validation_split"] = float(fraction)
    if split is None:
        return
    split = out["validation"] = check.string("dataset.validation", split)
    if split is None:
        return
    if fraction is not None:
        check.bad("dataset.validation", "give either 'validation' (a split of the dataset) or "
                  "'validation_split' (a fraction carved out of the training split), not both")
    elif split == out["test_split"]:
        check.bad("dataset.validation", f"'{split}' is the test split: choosing by test "
                  "scores leaks them into the run; carve a validation set out of the training "
                  "split with validation_split: 0.1")
    elif split == out["train_split"]:
        check.bad("dataset.validation", f"'{split}' is the training split: it would score "
                  "the data the student learns; use validation_split: 0.1 to hold part of it out")
    elif out["name"] in KNOWN_SPLITS and split not in VALIDATION_SPLITS[out["name"]]:
        splits = KNOWN_SPLITS[out["name"]]
        check.bad("dataset.validation", f"'{out['name']}' has no validation split (its splits "
                  f"are {', '.join(splits)}; 'all' holds the test split too): carve one out of "
                  "the training split with validation_split: 0.1")


def check_optimizer(check, raw, epochs):
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
        kind = check.kind(key, schedule, LR_SCHEDULES)
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


def check_export(check, raw, output_dir):
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
                  f"got {show_value(formats)}")
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


def check_teacher_cache(check, raw, data):
    """`teacher_cache: {views, top_k, tail_bits, path, seed}` (docs/cache.md); None: no cache."""
    if raw is None:
        return None
    out = {"views": 1, "top_k": None, "tail_bits": None, "path": None, "seed": 0}
    if not check.keys("teacher_cache", raw, TEACHER_CACHE_KEYS):
        return out
    out.update(raw)
    out["views"] = check.number("teacher_cache.views", out["views"], 1, integer=True)
    if out["top_k"] is not None:
        out["top_k"] = check.number("teacher_cache.top_k", out["top_k"], 1, integer=True)
    if out["tail_bits"] is not None:
        out["tail_bits"] = check.number("teacher_cache.tail_bits", out["tail_bits"], 1, maximum=8,
                                        integer=True)
        if out["top_k"] is None:
            check.bad("teacher_cache.tail_bits", "quantizes the classes outside the top-k: set "
                      "top_k too (e.g. top_k: 10, tail_bits: 3), or drop tail_bits (no top_k "
                      "stores full logits)")
    out["path"] = check.string("teacher_cache.path", out["path"], allow_none=True)
    out["seed"] = check.number("teacher_cache.seed", out["seed"], 0, integer=True)
    if data.get("teacher") is None:
        check.bad("teacher_cache", "needs a teacher (teacher is null); remove teacher_cache")
    dataset = data.get("dataset") if isinstance(data.get("dataset"), dict) else {}
    if out["views"] and out["views"] > 1 and dataset.get("augment", "none") == "none":
        check.bad("teacher_cache.views", f"{out['views']} views need an augmentation "
                  "(dataset.augment: cifar); without one every view is the same: use views: 1")
    if out["top_k"] is not None and out["tail_bits"] is None:
        terms = data.get("terms") if isinstance(data.get("terms"), list) else []
        full = [t.get("type") for t in terms if isinstance(t, dict)
                and t.get("type") in FULL_LOGIT_TERMS]
        if data.get("method") in FULL_LOGIT_METHODS:
            full.append(f"method {data['method']}")
        if full:
            check.bad("teacher_cache.top_k", f"a top-k cache has no full teacher logits, which "
                      f"{', '.join(full)} need; use terms of type TopKKD (KD on the top-k + "
                      "rest), tail_bits: 3 (the other classes quantized: full logits) or "
                      "top_k: null")
    return out
