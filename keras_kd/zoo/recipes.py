"""Ready-made recipes: each distillation method wired to the zoo's tap names.

`recipe(name, epochs)` returns what `Distiller` and `fit` need for one
method on a `keras_kd.zoo.cnn` teacher/student pair whose stages are named
`stage{i}_relu` (the shipped digits teacher is one). Used by
`examples/feature_methods.py` and the tests, and a template for your own
models: swap the tap names.
"""

import dataclasses

from keras_kd import losses
from keras_kd.regimes.stages import Stage, Stages

STAGES = ("stage1_relu", "stage2_relu", "stage3_relu")
# Methods whose feature pairs must have equal channel counts (no adapter).
WIDTH_MATCHED = ("fsp",)


@dataclasses.dataclass
class Recipe:
    """Terms, the hard-label weight and callbacks of one method."""

    name: str
    terms: list
    student_loss_weight: float = 1.0
    callbacks: list = dataclasses.field(default_factory=list)


def recipe(name, epochs, temperature=4.0):
    """The recipe of method `name` for a run of `epochs` epochs.

    Two-stage methods (FitNets, FSP) spend the first quarter of the epochs
    (at least 1) on the feature term alone, then switch to the task (FitNets
    stage 2 uses KD as in Romero et al.; FSP stage 2 the labels alone, as in
    Yim et al.).

    Logit methods that need the labels: DKD (alpha 1, beta 8, T =
    `temperature`) warms its weight up linearly over the first quarter of the
    epochs (at least 1; the paper's 20 of 240), so a short run still reaches
    the full weight; NKD uses the authors' defaults (T = 1, gamma = 1.5; it
    ignores `temperature`). Both keep the hard-label loss at weight 1, as the
    authors' code does.
    """
    first = max(1, epochs // 4)
    rest = max(1, epochs - first)
    if name == "scratch":
        return Recipe(name, [])
    if name == "kd":
        return Recipe(name, [losses.KD(temperature=temperature)])
    if name == "fitnet":
        terms = [losses.FitNet("stage2_relu", "stage2_relu", name="hint"),
                 losses.KD(temperature=temperature)]
        stages = Stages([
            Stage(first, {"hint": 1.0, "kd": 0.0, "student_loss": 0.0}, "hints"),
            Stage(rest, {"hint": 0.0, "kd": 1.0, "student_loss": 1.0}, "kd"),
        ])
        return Recipe(name, terms, callbacks=[stages])
    if name == "fsp":
        terms = [losses.FSP(pairs=[
            ("stage1_relu", "stage2_relu", "stage1_relu", "stage2_relu"),
            ("stage2_relu", "stage3_relu", "stage2_relu", "stage3_relu"),
        ])]
        stages = Stages([
            Stage(first, {"fsp": 1.0, "student_loss": 0.0}, "fsp"),
            Stage(rest, {"fsp": 0.0, "student_loss": 1.0}, "task"),
        ])
        return Recipe(name, terms, callbacks=[stages])
    if name == "overhaul":
        return Recipe(name, [losses.Overhaul(list(STAGES), list(STAGES))])
    if name == "review":
        return Recipe(name, [losses.ReviewKD(list(STAGES), list(STAGES))])
    if name == "at":
        return Recipe(name, [losses.AttentionTransfer(list(STAGES), list(STAGES))])
    if name == "rkd":
        return Recipe(name, [losses.RKD("pool", "pool")])
    if name == "pkt":
        return Recipe(name, [losses.PKT("pool", "pool")])
    if name == "sp":
        return Recipe(name, [losses.SP("stage3_relu", "stage3_relu")])
    if name == "dkd":
        return Recipe(name, [losses.DKD(temperature=temperature, warmup_epochs=first)])
    if name == "nkd":
        return Recipe(name, [losses.NKD()])
    raise ValueError(f"Unknown method '{name}'; known: {', '.join(METHODS)}.")


METHODS = ("scratch", "kd", "fitnet", "fsp", "overhaul", "review", "at", "rkd", "pkt", "sp",
           "dkd", "nkd")
