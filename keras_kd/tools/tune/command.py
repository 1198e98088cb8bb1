"""`keras-kd tune`: search a method's hyperparameters on a validation split.

    keras-kd tune --method kd --dataset fashion_mnist \\
        --teacher saved_models/fashion_mnist_teacher.keras --student fmnist_student \\
        --epochs 6 --trials 12 --train-size 15000 --output-dir tune_runs/fmnist_kd

What it does:

1. loads ONLY the training split of `--dataset` (`keras_kd.datasets.load`),
   optionally a fixed stratified subset of it (`--train-size`), and carves
   a stratified validation split out of it (`--val-fraction`, fixed
   `--split-seed`; `keras_kd.datasets.validation_split`, the carve that
   `keras-kd distill` and `keras-kd bench` use too). The test split is
   never read: the number the search maximises is the student's
   validation accuracy.
2. runs a KerasTuner search (`--algorithm bayesian` or `random`) over the
   method's space (`SPACES`: temperature, the term's weight, the hard-label
   weight, logit standardization on/off, method-specific ones such as
   DKD's β). Each trial builds the `keras_kd.zoo.recipes.recipe` of the method
   with the trial's values as overrides, so the rules of the recipe (map
   sizes, run length) still apply to what is not searched. Same student
   initialisation (`--seed`), Adam with cosine decay, `--epochs` epochs.
3. is resumable: KerasTuner's project folder `OUTPUT_DIR/kerastuner`
   (`overwrite=False`); re-running the same command skips finished trials.
   The settings that change the numbers are stored in
   `OUTPUT_DIR/tune.json`; a re-run with other settings is refused.
4. writes `OUTPUT_DIR/best.yaml`, a run config `keras-kd distill` accepts
   (validated with `keras_kd.tools.config.validate`; it trains on the whole training split
   and reports the test accuracy once), and `OUTPUT_DIR/trials.md`, the
   table of every trial.

Needs `keras-tuner` (`pip install keras-kd[tune]`).

Beside this module (the data split, the resumable search and the CLI flags):
`search` (the search spaces and the KerasTuner hypermodel) and
`report` (best.yaml and trials.md).
"""

import json
import os

from keras_kd.atomic import write_json, write_text
from keras_kd.tools.config import validate as config_lib
from keras_kd.tools.config.checker import did_you_mean
from keras_kd.tools.tune.arguments import add_arguments  # noqa: F401  (for callers)
from keras_kd.tools.tune.report import (
    BEST_CONFIG,
    OBJECTIVE,
    TRIALS_TABLE,
    best_config,
    best_scored_trial,
    recipe_to_config_terms,
    trial_number,
    trials_table,
)
from keras_kd.tools.tune.search import SPACES, keras_tuner_module, make_hypermodel

SETTINGS_FILE = "tune.json"
PROJECT = "kerastuner"
# Settings that change the numbers; a resumed search must keep them.
_FIXED = ("method", "dataset", "teacher", "student", "epochs", "batch_size", "train_size",
          "val_fraction", "split_seed", "learning_rate", "seed", "algorithm")


# ----------------------------------------------------------------------------
# Data: the training split only.

def load_train_only(dataset, train_size=None, data_dir=None):
    """The training split (or a fixed stratified subset); never the test split."""
    from keras_kd import datasets
    from keras_kd.tools.bench import command as bench

    x, y = datasets.load(dataset, "train", as_numpy=True, data_dir=data_dir)
    return bench._subset(x, y, train_size)


def _check_settings(output_dir, settings):
    path = os.path.join(output_dir, SETTINGS_FILE)
    if os.path.exists(path):
        with open(path) as handle:
            earlier = json.load(handle)
        changed = [k for k in _FIXED if earlier.get(k) != settings.get(k)]
        if changed:
            details = ", ".join(f"{k}: {earlier.get(k)!r} → {settings.get(k)!r}"
                                for k in changed)
            raise ValueError(
                f"'{output_dir}' holds a search with other settings ({details}); its trials "
                "cannot be mixed with these. Use another --output-dir, or the earlier "
                "settings to resume.")
    write_json(path, settings, indent=1)


# ----------------------------------------------------------------------------

def run(method, student, dataset, teacher=None, epochs=6, trials=10, batch_size=64,
        train_size=None, val_fraction=0.1, split_seed=0, learning_rate=1e-3, seed=0,
        algorithm="bayesian", output_dir=None, data_dir=None, verbose=1, data=None,
        search_path=(), cache_teacher=True):
    """Runs (or resumes) a search; returns {'best': hp values, 'val_accuracy',
    'config': path, 'trials': path, 'table': markdown}.

    `data` (`(x, y)` arrays) replaces the training split (tests, user arrays);
    the validation split is carved from it all the same. `cache_teacher`:
    for the logit methods, the teacher's logits on the training part are
    computed once (`keras_kd.tools.bench.train.logit_cache`) and every trial reads them.
    """
    import keras

    from keras_kd import datasets
    from keras_kd.zoo import recipes as methods

    if method not in methods.METHODS:
        raise ValueError(f"Unknown method '{method}'" + did_you_mean(method, methods.METHODS)
                         + f" (known: {', '.join(methods.METHODS)}).")
    kt = keras_tuner_module()
    if method != "scratch" and not teacher:
        raise ValueError(f"--method {method} needs --teacher (a .keras file).")
    if algorithm not in ("bayesian", "random"):
        raise ValueError(f"--algorithm must be 'bayesian' or 'random', got {algorithm!r}.")
    if int(trials) < 1 or int(epochs) < 1:
        raise ValueError(f"--trials and --epochs must be >= 1, got {trials} and {epochs}.")
    output_dir = output_dir or os.path.join("tune_runs", f"{dataset}_{method}")
    x, y = load_train_only(dataset, train_size, data_dir) if data is None else data
    (x_train, y_train), (x_val, y_val) = datasets.validation_split(
        x, y, val_fraction, split_seed, name="--val-fraction")
    settings = {
        "method": method, "dataset": dataset if data is None else "user arrays",
        "teacher": teacher, "student": student, "epochs": int(epochs),
        "batch_size": int(batch_size), "train_size": train_size,
        "val_fraction": float(val_fraction), "split_seed": int(split_seed),
        "learning_rate": float(learning_rate), "seed": int(seed), "algorithm": algorithm,
        "trials": int(trials), "data_dir": data_dir,
        "train_examples": int(len(y_train)), "val_examples": int(len(y_val)),
    }
    _check_settings(output_dir, settings)
    teacher_model = None if method == "scratch" else keras.saving.load_model(teacher)
    num_classes = int(max(y.max() + 1, teacher_model.outputs[0].shape[-1]
                          if teacher_model is not None else 0))
    hypermodel = make_hypermodel(settings, teacher_model, tuple(x.shape[1:]), num_classes,
                                 len(y_train), search_path)
    objective = kt.Objective(OBJECTIVE, direction="max")
    common = dict(hypermodel=hypermodel, objective=objective, max_trials=int(trials),
                  seed=int(seed), directory=output_dir, project_name=PROJECT, overwrite=False,
                  # A trial that cannot even be built is a bug, not a bad setting: stop.
                  max_consecutive_failed_trials=1)
    tuner = (kt.BayesianOptimization(**common) if algorithm == "bayesian"
             else kt.RandomSearch(**common))
    if verbose:
        done = sum(1 for t in tuner.oracle.trials.values() if t.score is not None)
        print(f"keras-kd tune: {method} on {settings['dataset']}: {len(y_train)} train / "
              f"{len(y_val)} validation images (carved from the training split; the test "
              f"split is not read); {done} of {trials} trial(s) done earlier in {output_dir}.",
              flush=True)
    train = dict(x=x_train, y=y_train, batch_size=int(batch_size), shuffle=True)
    if cache_teacher and method in methods.LOGIT_METHODS:
        # A frozen teacher's logits never change: one pass, not one per step of every trial.
        from keras_kd.tools.bench.train import logit_cache

        cache = logit_cache(teacher_model, x_train, y_train)
        train = dict(x=cache.dataset(int(batch_size), shuffle=True, seed=int(seed)),
                     shuffle=False)  # the cache's pipeline shuffles, seeded
    tuner.search(**train, validation_data=(x_val, y_val), epochs=int(epochs),
                 verbose={0: 0, 1: 2}.get(verbose, 1))
    best_trial = best_scored_trial(tuner)
    best_hp = best_trial.hyperparameters
    # Rebuild the best recipe to write it (build() sets hypermodel.plan).
    hypermodel.build(best_hp)
    header, raw = best_config(settings, hypermodel.plan, best_trial.score,
                              len(tuner.oracle.trials), output_dir)
    config_path = os.path.join(output_dir, BEST_CONFIG)
    import yaml

    write_text(config_path, header + yaml.safe_dump(raw, sort_keys=False,
                                                     default_flow_style=None))
    config_lib.load(config_path)  # refuses to leave an invalid config unnoticed
    table = trials_table(tuner)
    write_text(os.path.join(output_dir, TRIALS_TABLE),
                f"# keras-kd tune: {method} on {settings['dataset']}\n\n"
                f"Validation: {len(y_val)} images carved from the training split "
                f"(fraction {val_fraction}, split seed {split_seed}); {epochs} epoch(s) per "
                f"trial, batch {batch_size}, Adam {learning_rate} with cosine decay, seed "
                f"{seed}, {algorithm} search.\n\n{table}\n\n"
                f"Best: trial {trial_number(best_trial)}, {best_hp.values} → `{config_path}`.\n")
    if verbose:
        print(f"\n{table}\n\nbest validation accuracy {best_trial.score:.4f} (trial "
              f"{trial_number(best_trial)}): {best_hp.values}"
              f"\nrun config: {config_path}  (keras-kd distill {config_path})\n"
              f"trials: {os.path.join(output_dir, TRIALS_TABLE)}", flush=True)
    return {"best": dict(best_hp.values), "val_accuracy": float(best_trial.score),
            "config": config_path, "trials": os.path.join(output_dir, TRIALS_TABLE),
            "table": table}


def from_args(args):
    return run(method=args.method, student=args.student, dataset=args.dataset,
               teacher=args.teacher, epochs=args.epochs, trials=args.trials,
               batch_size=args.batch_size, train_size=args.train_size,
               val_fraction=args.val_fraction, split_seed=args.split_seed,
               learning_rate=args.learning_rate, seed=args.seed, algorithm=args.algorithm,
               output_dir=args.output_dir, data_dir=args.data_dir,
               verbose=0 if args.quiet else 1, cache_teacher=not args.live_teacher)


__all__ = [
    "BEST_CONFIG",
    "SPACES",
    "TRIALS_TABLE",
    "add_arguments",
    "best_config",
    "from_args",
    "load_train_only",
    "make_hypermodel",
    "recipe_to_config_terms",
    "run",
    "trials_table",
]
