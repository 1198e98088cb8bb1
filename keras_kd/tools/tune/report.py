"""`keras-kd tune`'s outputs: the best setting as a run config, the trials as a table."""

import inspect
import os

import numpy as np

from keras_kd.losses import registry

BEST_CONFIG = "best.yaml"
TRIALS_TABLE = "trials.md"
OBJECTIVE = "val_accuracy"


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


def trial_number(trial):
    """The number KerasTuner shows for a trial on screen ("Running Trial #1",
    "Trial 1 Complete"): its id ("00", "01", ...) counted from 1."""
    return int(trial.trial_id) + 1


def trials_table(tuner):
    """Markdown: every trial's hyperparameters and validation accuracy, best
    first; trials numbered as KerasTuner numbers them on screen (from 1)."""
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
    for _, _, trial in rows:
        values = [str(trial.hyperparameters.values.get(n, "")) for n in names]
        score = "" if trial.score is None else f"{trial.score:.4f}"
        lines.append(f"| {trial_number(trial)} | " + " | ".join(values) + f" | {score} | "
                     f"{str(trial.status).split('.')[-1].lower()} |")
    return "\n".join(lines)


def best_scored_trial(tuner):
    """The best scored trial; ties go to the earliest trial (stable on resume)."""
    scored = [t for t in tuner.oracle.trials.values() if t.score is not None]
    if not scored:
        raise ValueError("No trial finished with a score; see the errors above.")
    return min(scored, key=lambda t: (-t.score, int(t.trial_id)))
