"""A run's output directory: the config copy, results.json, exports, resuming."""

import json
import math
import os
import shutil

from keras_kd.atomic import write_json
from keras_kd.tools.config import validate as config_lib

RESULTS = "results.json"
CONFIG_COPY = "config.yaml"
# Where `keras-kd` writes the traceback of a run that failed (the command
# prints one line naming it).
ERROR_LOG = "error.log"


def export_paths(cfg):
    """{format: path} of the student exports."""
    stem = cfg["export"]["path"]
    suffix = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite"}
    return {fmt: stem + suffix[fmt] for fmt in cfg["export"]["formats"]}


def prepare_output_dir(cfg, digest, overwrite, export, verbose):
    """Returns the finished results when the same run is already done.

    A folder holding a run of another config is refused (unless
    `overwrite`) once that run has trained: a finished run (results.json) or
    an interrupted one that finished an epoch (its backup). What a run that
    failed before that leaves behind (the config copy, its TensorBoard logs,
    error.log) is replaced, so the corrected command runs."""
    out = cfg["output_dir"]
    results_path = os.path.join(out, RESULTS)
    copy_path = os.path.join(out, CONFIG_COPY)
    previous = None
    if os.path.isfile(copy_path):
        previous = stored_config_hash(copy_path)
    trained = os.path.isfile(results_path) or resumed_epoch(os.path.join(out, "backup")) is not None
    if overwrite:
        _remove_run(out, (RESULTS, "backup", "logs", ERROR_LOG))
    else:
        if previous is not None and previous != digest:
            if trained:
                raise FileExistsError(
                    f"output_dir: '{out}' holds a run of a different config (hash {previous}, "
                    f"this one {digest}). Choose another output_dir (--output-dir) or pass "
                    "--overwrite to discard it.")
            print(f"Replacing what a run of another config (hash {previous}) left in "
                  f"'{out}': it stopped before finishing an epoch.", flush=True)
            _remove_run(out, ("backup", "logs", ERROR_LOG))
        if os.path.isfile(results_path):
            with open(results_path) as handle:
                results = json.load(handle)
            print(f"Already finished: {results_path} (test accuracy "
                 f"{results.get('test_accuracy')}). Nothing to do; --overwrite retrains.")
            return results
        if export:
            existing = [p for p in export_paths(cfg).values() if os.path.exists(p)]
            if existing:
                raise FileExistsError(
                    f"export.path: {', '.join(existing)} already exist(s) and would be "
                    "replaced by this run's student. Pass --overwrite to replace, or set "
                    "export.path (--set export.path=...) elsewhere.")
    os.makedirs(out, exist_ok=True)
    config_lib.dump(cfg, copy_path)
    return None


def stored_config_hash(path):
    """The hash of the config copy at `path`, resolved again with today's
    defaults, so that a setting added since (`dataset.validation_split`: null)
    does not make a finished run look like another config's."""
    data = config_lib.read(path)
    try:
        data = config_lib.validate(data, check_files=False)
    except ValueError:  # no longer valid as it stands: compare it as written
        pass
    return config_lib.config_hash(data)


def _remove_run(out, names):
    """Removes the named entries of a run's folder (all of them written by keras-kd)."""
    for name in names:
        path = os.path.join(out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def resumed_epoch(backup_dir):
    """Epochs finished before the interruption (BackupAndRestore's record)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle).get("epoch")


def write_results(output_dir, results):
    """Writes `results` to `output_dir/results.json` (beside, then renamed in)."""
    write_json(os.path.join(output_dir, RESULTS), results, indent=2, default=_json_default)


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
