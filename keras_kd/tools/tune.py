"""`keras-kd tune`: search a method's hyperparameters on a validation split.

    keras-kd tune --method kd --dataset fashion_mnist \\
        --teacher saved_models/fashion_mnist_teacher.keras --student fmnist_student \\
        --epochs 6 --trials 12 --train-size 15000 --output-dir tune_runs/fmnist_kd

What it does:

1. loads ONLY the training split of `--dataset` (`keras_kd.datasets.load`),
   optionally a fixed stratified subset of it (`--train-size`), and carves
   a stratified validation split out of it (`--val-fraction`, fixed
   `--split-seed`). The test split is never read: the number the search
   maximises is the student's validation accuracy.
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
   (validated with `keras_kd.tools.config`; it trains on the whole training split
   and reports the test accuracy once), and `OUTPUT_DIR/trials.md`, the
   table of every trial.

Needs `keras-tuner` (`pip install keras-kd[tune]`).
"""

import inspect
import json
import os

import numpy as np

from keras_kd.losses import registry
from keras_kd.tools import config as config_lib

SETTINGS_FILE = "tune.json"
BEST_CONFIG = "best.yaml"
TRIALS_TABLE = "trials.md"
PROJECT = "kerastuner"
OBJECTIVE = "val_accuracy"
# Settings that change the numbers; a resumed search must keep them.
_FIXED = ("method", "dataset", "teacher", "student", "epochs", "batch_size", "train_size",
          "val_fraction", "split_seed", "learning_rate", "seed", "algorithm")


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError:
        raise ImportError(
            "keras-kd tune needs KerasTuner: pip install keras-tuner "
            "(or pip install 'keras-kd[tune]').") from None
    return keras_tuner


# ----------------------------------------------------------------------------
# Search spaces: method -> function(hp, default recipe) -> recipe overrides.

def _standardization(hp, cls_name, default):
    """{'logit_standardization': hp} when the term class takes it, else {}."""
    import inspect

    from keras_kd import losses

    if "logit_standardization" not in inspect.signature(getattr(losses, cls_name)).parameters:
        return {}
    return {"logit_standardization": hp.Boolean("logit_standardization", default=default)}


def _logit_space(hp, standardize_default=False):
    return {
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0, 8.0], default=4.0),
        "weight": hp.Choice("weight", [0.5, 0.9, 1.0, 2.0], default=1.0),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0], default=1.0),
        **_standardization(hp, "KD", standardize_default),
    }


def _kd_space(hp, default):
    return _logit_space(hp, standardize_default=default.weights.get("logit_standardization",
                                                                     False))


def _dkd_space(hp, default):
    return {
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0, 8.0], default=4.0),
        "alpha": hp.Choice("alpha", [0.5, 1.0, 2.0], default=1.0),
        "beta": hp.Choice("beta", [0.5, 1.0, 2.0, 4.0, 8.0], default=1.0),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0], default=1.0),
        **_standardization(hp, "DKD", default.weights.get("logit_standardization", False)),
    }


def _dist_space(hp, default):
    return {
        "beta": hp.Choice("beta", [0.5, 1.0, 2.0], default=1.0),
        "gamma": hp.Choice("gamma", [0.5, 1.0, 2.0], default=1.0),
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0], default=1.0),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.5, 1.0], default=1.0),
    }


def _nkd_space(hp, default):
    return {
        "gamma": hp.Choice("gamma", [0.5, 1.0, 1.5, 2.0], default=1.5),
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0], default=1.0),
        "weight": hp.Choice("weight", [0.5, 1.0, 2.0], default=1.0),
    }


def _scaled_space(hp, default):
    """Feature methods: the term's weight as a factor of the recipe's rule."""
    name = default.name
    base = default.weights.get(name)
    out = {"student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0],
                                            default=default.student_loss_weight)}
    if base is not None:
        factor = hp.Choice("weight_factor", [0.01, 0.1, 1.0, 10.0], default=1.0)
        out["weight"] = float(base) * factor
    return out


def _two_stage_space(hp, default):
    """FitNets: stage 2's KD settings (stage 1 trains on the hint alone)."""
    if default.name == "fsp":
        return {}
    return {
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0, 8.0], default=4.0),
        "weight": hp.Choice("weight", [0.5, 0.9, 1.0, 2.0], default=1.0),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0], default=1.0),
    }


def _no_space(hp, default):
    return {}


SPACES = {
    "scratch": _no_space,
    "kd": _kd_space,
    "kd_ls": _kd_space,
    "dist": _dist_space,
    "dkd": _dkd_space,
    "dkd_ls": _dkd_space,
    "nkd": _nkd_space,
    "fitnet": _two_stage_space,
    "fsp": _two_stage_space,
    "overhaul": _scaled_space,
    "review": _scaled_space,
    "at": _scaled_space,
    "rkd": _scaled_space,
    "pkt": _scaled_space,
    "sp": _scaled_space,
}


# ----------------------------------------------------------------------------
# Data: the training split only.

def validation_split(x, y, fraction, seed):
    """A stratified (train, validation) split of arrays, fixed by `seed`."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {fraction}.")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rng.shuffle(members)
        val.append(members[: max(1, int(round(fraction * len(members))))])
    val = np.sort(np.concatenate(val))
    keep = np.ones(len(y), bool)
    keep[val] = False
    if keep.sum() == 0:
        raise ValueError("The validation split leaves no training examples; lower "
                         "--val-fraction or use more data.")
    return (x[keep], y[keep]), (x[val], y[val])


def load_train_only(dataset, train_size=None, data_dir=None):
    """The training split (or a fixed stratified subset); never the test split."""
    from keras_kd import datasets
    from keras_kd.tools import bench

    x, y = datasets.load(dataset, "train", as_numpy=True, data_dir=data_dir)
    return bench._subset(x, y, train_size)


# ----------------------------------------------------------------------------
# The hypermodel.

def _adam_cosine(learning_rate, epochs, examples, batch_size):
    import keras

    steps = max(1, epochs * -(-examples // batch_size))
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))


def make_hypermodel(settings, teacher, input_shape, num_classes, train_examples,
                    search_path=()):
    """A KerasTuner HyperModel: build() returns the compiled Distiller of a
    trial (student re-initialised from `settings['seed']`); fit() adds the
    recipe's callbacks (two-stage methods)."""
    import keras

    from keras_kd.zoo import recipes as methods
    from keras_kd.distiller import Distiller
    from keras_kd.tools.run_config import build_model

    kt = _keras_tuner()
    method = settings["method"]

    class DistillationHyperModel(kt.HyperModel):
        def build(self, hp):
            keras.utils.set_random_seed(settings["seed"])
            student = build_model(settings["student"], input_shape, num_classes, search_path)
            default = methods.recipe(method, settings["epochs"], teacher=teacher,
                                     student=student)
            overrides = SPACES[method](hp, default)
            plan = methods.recipe(method, settings["epochs"], teacher=teacher, student=student,
                                  **overrides)
            self.plan = plan
            optimizer = _adam_cosine(settings["learning_rate"], settings["epochs"],
                                     train_examples, settings["batch_size"])
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            if method == "scratch":
                student.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
                return student
            model = Distiller(teacher, student, losses=plan.terms,
                              student_loss_weight=plan.student_loss_weight)
            model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
            return model

        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            callbacks = list(callbacks or []) + list(self.plan.callbacks)
            return model.fit(*args, callbacks=callbacks, **kwargs)

    return DistillationHyperModel()


# ----------------------------------------------------------------------------
# Outputs: the best setting as a run config, the trials as a table.

def _term_entry(term):
    """A `terms:` entry for a built term: its constructor arguments."""
    kind = type(term).__name__
    try:
        known = registry.get(kind) is type(term)
    except (TypeError, ValueError):
        known = False
    if not known:
        raise ValueError(f"A {kind} term cannot be written to a run config.")
    allowed = registry.arguments(type(term))
    defaults = {n: p.default for n, p in inspect.signature(type(term).__init__).parameters.items()}
    cfg = term.get_config()
    entry = {"type": kind}
    for key in allowed:
        # Arguments left at their default stay out of the file, except the
        # ones a reader looks for (temperature, the name other keys refer to).
        if key in cfg and cfg[key] is not None and (
                key in ("temperature", "name") or cfg[key] != defaults.get(key)):
            value = cfg[key]
            if isinstance(value, tuple):
                value = list(value)
            if key == "pairs":
                value = [list(p) for p in value]
            if key in ("regressor", "adapter") and not isinstance(value, str):
                continue
            entry[key] = _plain(value)
    # The weight lives in a float32 variable: 7 significant digits give back 0.9, not 0.8999999.
    entry["weight"] = float(f"{float(getattr(term, 'target_weight', None) or term.weight):.7g}")
    return entry


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def recipe_to_config_terms(plan):
    """`(terms, student_loss_weight, student_loss_schedule)` of a Recipe, its
    `Stages` callback written as piecewise weight schedules."""
    from keras_kd.regimes.stages import STUDENT_LOSS, Stages

    terms = [_term_entry(t) for t in plan.terms]
    slw, slw_schedule = float(plan.student_loss_weight), None
    stages = [c for c in plan.callbacks if isinstance(c, Stages)]
    if stages:
        (callback,) = stages
        bounds, epoch = [], 0
        for stage in callback.stages[:-1]:
            epoch += stage.epochs
            bounds.append(epoch)

        def schedule(key, default):
            values = [stage.weights.get(key, default) for stage in callback.stages]
            peak = max(values)
            if peak == 0:
                return 0.0, None
            return peak, {"type": "piecewise", "boundaries_epochs": bounds,
                          "factors": [v / peak for v in values]}

        for entry, term in zip(terms, plan.terms):
            weight, sched = schedule(term.name, entry["weight"])
            entry["weight"] = weight
            if sched is not None:
                entry["schedule"] = sched
        slw, slw_schedule = schedule(STUDENT_LOSS, slw)
    return terms, slw, slw_schedule


def best_config(settings, plan, val_accuracy, trials, output_dir):
    """The raw mapping of the best setting as a `keras-kd distill` config."""
    terms, slw, slw_schedule = recipe_to_config_terms(plan)
    data = {
        "teacher": None if settings["method"] == "scratch" else os.path.abspath(settings["teacher"]),
        "student": settings["student"],
        "dataset": {"name": settings["dataset"], "batch_size": settings["batch_size"]},
    }
    if settings.get("data_dir"):
        data["dataset"]["data_dir"] = settings["data_dir"]
    if settings["method"] != "scratch":
        data["terms"] = terms
        data["student_loss_weight"] = slw
    if slw_schedule:
        data["student_loss_schedule"] = slw_schedule
    data.update({
        "optimizer": {"name": "adam", "learning_rate": settings["learning_rate"],
                      "schedule": {"type": "cosine"}},
        "epochs": settings["epochs"],
        "seed": settings["seed"],
        "output_dir": os.path.join(output_dir, "distill"),
        "export": {"formats": ["keras"], "path": os.path.join(output_dir, "distill", "student")},
    })
    header = (f"# Best of {trials} trial(s) of `keras-kd tune --method {settings['method']}`: "
              f"validation accuracy {val_accuracy:.4f}\n"
              f"# on {settings['val_examples']} images carved from the training split "
              f"(the test split was not read).\n"
              f"#   keras-kd distill {os.path.join(output_dir, BEST_CONFIG)}\n")
    return header, data


def trials_table(tuner):
    """Markdown: every trial's hyperparameters and validation accuracy, best first."""
    trials = list(tuner.oracle.trials.values())
    names = []
    for trial in trials:
        for name in trial.hyperparameters.values:
            if name not in names:
                names.append(name)
    rows = []
    for trial in trials:
        score = trial.score
        rows.append((-(score if score is not None else -1.0), trial.trial_id, trial))
    rows.sort(key=lambda r: (r[0], int(r[1])))
    lines = ["| trial | " + " | ".join(names) + f" | {OBJECTIVE} | status |",
             "|---|" + "---|" * (len(names) + 2)]
    for _, trial_id, trial in rows:
        values = [str(trial.hyperparameters.values.get(n, "")) for n in names]
        score = "" if trial.score is None else f"{trial.score:.4f}"
        lines.append(f"| {trial_id} | " + " | ".join(values) + f" | {score} | "
                     f"{str(trial.status).split('.')[-1].lower()} |")
    return "\n".join(lines)


def _best_trial(tuner):
    """The best scored trial; ties go to the earliest trial (stable on resume)."""
    scored = [t for t in tuner.oracle.trials.values() if t.score is not None]
    if not scored:
        raise ValueError("No trial finished with a score; see the errors above.")
    return min(scored, key=lambda t: (-t.score, int(t.trial_id)))


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
    os.makedirs(output_dir, exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        json.dump(settings, handle, indent=1)
    os.replace(path + ".tmp", path)


def _write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


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
    computed once (`bench_train.logit_cache`) and every trial reads them.
    """
    import keras

    from keras_kd.zoo import recipes as methods

    kt = _keras_tuner()
    if method not in methods.METHODS:
        raise ValueError(f"Unknown method '{method}'; known: {', '.join(methods.METHODS)}.")
    if method != "scratch" and not teacher:
        raise ValueError(f"--method {method} needs --teacher (a .keras file).")
    if algorithm not in ("bayesian", "random"):
        raise ValueError(f"--algorithm must be 'bayesian' or 'random', got {algorithm!r}.")
    if int(trials) < 1 or int(epochs) < 1:
        raise ValueError(f"--trials and --epochs must be >= 1, got {trials} and {epochs}.")
    output_dir = output_dir or os.path.join("tune_runs", f"{dataset}_{method}")
    x, y = load_train_only(dataset, train_size, data_dir) if data is None else data
    (x_train, y_train), (x_val, y_val) = validation_split(x, y, val_fraction, split_seed)
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
        from keras_kd.tools.bench_train import logit_cache

        cache = logit_cache(teacher_model, x_train, y_train)
        train = dict(x=cache.dataset(int(batch_size), shuffle=True, seed=int(seed)),
                     shuffle=False)  # the cache's pipeline shuffles, seeded
    tuner.search(**train, validation_data=(x_val, y_val), epochs=int(epochs),
                 verbose={0: 0, 1: 2}.get(verbose, 1))
    best_trial = _best_trial(tuner)
    best_hp = best_trial.hyperparameters
    # Rebuild the best recipe to write it (build() sets hypermodel.plan).
    hypermodel.build(best_hp)
    header, raw = best_config(settings, hypermodel.plan, best_trial.score,
                              len(tuner.oracle.trials), output_dir)
    config_path = os.path.join(output_dir, BEST_CONFIG)
    import yaml

    _write_text(config_path, header + yaml.safe_dump(raw, sort_keys=False,
                                                     default_flow_style=None))
    config_lib.load(config_path)  # refuses to leave an invalid config unnoticed
    table = trials_table(tuner)
    _write_text(os.path.join(output_dir, TRIALS_TABLE),
                f"# keras-kd tune: {method} on {settings['dataset']}\n\n"
                f"Validation: {len(y_val)} images carved from the training split "
                f"(fraction {val_fraction}, split seed {split_seed}); {epochs} epoch(s) per "
                f"trial, batch {batch_size}, Adam {learning_rate} with cosine decay, seed "
                f"{seed}, {algorithm} search.\n\n{table}\n\n"
                f"Best: {best_hp.values} → `{config_path}`.\n")
    if verbose:
        print(f"\n{table}\n\nbest validation accuracy {best_trial.score:.4f}: {best_hp.values}"
              f"\nrun config: {config_path}  (keras-kd distill {config_path})\n"
              f"trials: {os.path.join(output_dir, TRIALS_TABLE)}", flush=True)
    return {"best": dict(best_hp.values), "val_accuracy": float(best_trial.score),
            "config": config_path, "trials": os.path.join(output_dir, TRIALS_TABLE),
            "table": table}


def add_arguments(parser):
    """The `keras-kd tune` flags."""
    from keras_kd.zoo import recipes as methods

    parser.add_argument("--method", required=True, choices=methods.METHODS,
                        help="the recipe whose hyperparameters are searched")
    parser.add_argument("--dataset", required=True,
                        help="dataset name (keras_kd.datasets.load); only its training split "
                        "is read")
    parser.add_argument("--teacher", default=None, help="teacher .keras file")
    parser.add_argument("--student", required=True,
                        help="student: zoo name, .keras file or module:function")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (default 6)")
    parser.add_argument("--trials", type=int, default=10, help="trials in all (default 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="use a fixed stratified subset of the training split")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="fraction of the training data held out for validation (0.1)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the student's initialisation and of the search")
    parser.add_argument("--algorithm", default="bayesian", choices=("bayesian", "random"))
    parser.add_argument("--data-dir", default=None, help="where to look first for the dataset")
    parser.add_argument("--output-dir", default=None,
                        help="KerasTuner project, best.yaml and trials.md (default "
                        "tune_runs/<dataset>_<method>); re-running resumes")
    parser.add_argument("--live-teacher", action="store_true",
                        help="run the teacher live for the logit methods too (default: its "
                        "logits on the training part are computed once and cached)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def from_args(args):
    return run(method=args.method, student=args.student, dataset=args.dataset,
               teacher=args.teacher, epochs=args.epochs, trials=args.trials,
               batch_size=args.batch_size, train_size=args.train_size,
               val_fraction=args.val_fraction, split_seed=args.split_seed,
               learning_rate=args.learning_rate, seed=args.seed, algorithm=args.algorithm,
               output_dir=args.output_dir, data_dir=args.data_dir,
               verbose=0 if args.quiet else 1, cache_teacher=not args.live_teacher)
