"""Ready-made recipes: each distillation method wired to the zoo's tap names,
with weights scaled to the data and the budget by stated rules.

`recipe(name, epochs)` returns what `Distiller` and `fit` need for one
method on a `keras_kd.zoo.cnn` teacher/student pair whose stages are named
`stage{i}_relu` (the shipped digits and Fashion-MNIST teachers are). Give
the models (`teacher=`, `student=`) so the rules can read the feature-map
sizes; without them the rules assume the maps the papers' weights were set
for (CIFAR, 32×32 input) and leave those weights as published.

`RECIPES` is the table: method name -> a small function of a `Context`
(epochs, temperature, map sizes, class count) and the overrides. Every
function documents its rule and what chose it. Keyword overrides
(`weight=`, `student_loss_weight=`, `temperature=`,
`logit_standardization=`, `beta=`, ...) replace a rule's result: this is
what `keras-kd tune` searches. `Recipe.weights` states the effective
weights, for reports.

The principle behind every rule: a weight published for one setting keeps
the *same strength per unit of what it multiplies* in another, i.e. it is
rescaled by the ratio of the quantities that change the loss's magnitude
(map area for losses averaged over positions, element count for losses
summed over elements, run length for terms whose published strength
assumes hundreds of epochs). No rule reads a test split.
"""

import math

from keras_kd import losses
from keras_kd.regimes.stages import Stage, Stages

from keras_kd.zoo.recipe_context import (  # noqa: F401  (re-exported: the public names)
    KD_HARD_WEIGHT,
    GRADIENT_RATIO,
    KD_WEIGHT,
    OVERHAUL_REFERENCE_ELEMENTS,
    REFERENCE_EPOCHS,
    REFERENCE_INPUT_AREA,
    STAGES,
    WIDTH_MATCHED,
    Context,
    Recipe,
    stage_maps,
)


def _take(overrides, key, default):
    return overrides.pop(key, default)


def _kd_term(ctx, overrides, name="kd", standardize=False):
    temperature = _take(overrides, "temperature", ctx.temperature)
    weight = _take(overrides, "weight", KD_WEIGHT)
    ls = _take(overrides, "logit_standardization", standardize)
    kwargs = {"logit_standardization": True} if ls else {}
    return losses.KD(temperature=temperature, weight=weight, name=name, **kwargs), \
        {name: weight, "temperature": temperature, "logit_standardization": bool(ls)}


def _scratch(ctx, overrides):
    """The student alone on the labels."""
    return Recipe("scratch", [], weights={"student_loss": 1.0})


def _kd(ctx, overrides, standardize=False, name="kd"):
    """KD (Hinton et al. 2015): 1·CE + 1·T²·KL(p_t^T ‖ p_s^T), T = 4.

    Rule: independent weights, the labels and the T²-scaled KL at 1 each (no
    scaling: the T² factor already makes the KL's gradient independent of
    T). Measured on the digits validation split (benchmarks/recipe_rules.py,
    20 epochs, 3 seeds, paired): the convex 0.1·CE + 0.9·KD of Hinton et al.
    and `keras.distillation` scored 0, −0.70 and −0.35 points below it.
    `keras.distillation`'s α·CE + (1 − α)·KD is `student_loss_weight=α,
    weight=1 − α` (docs/tuning.md, examples/keras_parity.py).
    """
    term, weights = _kd_term(ctx, overrides, standardize=standardize)
    slw = _take(overrides, "student_loss_weight", KD_HARD_WEIGHT)
    return Recipe(name, [term], student_loss_weight=slw,
                  weights={"student_loss": slw, **weights})


def _kd_ls(ctx, overrides):
    """KD with logit standardization (Sun et al., CVPR 2024): the `kd`
    recipe with both logits z-scored per sample before the temperature.

    Rule: as `kd` (1·CE + 1·KD). The authors' CIFAR scripts use a base
    temperature of 2 with standardization (the z-scores have unit spread, so
    T plays a different role than on raw logits); we keep T = `temperature`
    (4) so `kd_ls` and `kd` differ in the standardization only. Not yet
    measured on a validation split.
    """
    return _kd(ctx, overrides, standardize=True, name="kd_ls")


def _dist(ctx, overrides):
    """DIST (Huang et al., NeurIPS 2022): τ²·(β·inter + γ·intra), β = γ = 1,
    τ = 1, beside the labels at weight 1 (the authors' ImageNet/CIFAR
    setting: CE weight 1, DIST weight 1; their code's τ = 1 default; the
    correlation terms are scale-free, so no size rule applies). Not yet
    measured on a validation split.
    """
    beta = _take(overrides, "beta", 1.0)
    gamma = _take(overrides, "gamma", 1.0)
    temperature = _take(overrides, "temperature", 1.0)
    weight = _take(overrides, "weight", 1.0)
    slw = _take(overrides, "student_loss_weight", 1.0)
    term = losses.DIST(beta=beta, gamma=gamma, temperature=temperature, weight=weight)
    return Recipe("dist", [term], student_loss_weight=slw,
                  weights={"student_loss": slw, "dist": weight, "beta": beta, "gamma": gamma,
                           "temperature": temperature})


def _dkd_beta(ctx):
    """β scaled to the run length: 1 + (8 − 1)·min(1, epochs / 240)."""
    return 1.0 + (8.0 - 1.0) * ctx.budget()


def _dkd(ctx, overrides, standardize=False, name="dkd"):
    """DKD (Zhao et al. 2022): α·TCKD + β·NCKD beside the labels at weight 1.

    Rules:
    - warm-up: the authors warm the weight up linearly over 20 of 240
      epochs; here over the same fraction of the run, 1/12, at least 1
      epoch (a 6-epoch run warms up over 1 epoch, a 240-epoch run over 20).
    - β scaled to the run length: β = 1 + 7·min(1, epochs / 240), from 1
      (NCKD as strong as TCKD, near plain KD) for a short run to the paper's
      8 at 240 epochs. Why: β = 8 puts NCKD's T²-scaled gradient far above
      the labels'; the paper's runs have 240 epochs for the labels to win
      back, a short run has not. α = 1 and T = `temperature` as published.
    Not yet measured on a validation split.
    """
    alpha = _take(overrides, "alpha", 1.0)
    beta = _take(overrides, "beta", _dkd_beta(ctx))
    temperature = _take(overrides, "temperature", ctx.temperature)
    warmup = _take(overrides, "warmup_epochs", max(1, round(ctx.epochs * 20 / REFERENCE_EPOCHS)))
    weight = _take(overrides, "weight", 1.0)
    ls = _take(overrides, "logit_standardization", standardize)
    slw = _take(overrides, "student_loss_weight", 1.0)
    kwargs = {"logit_standardization": True} if ls else {}
    term = losses.DKD(alpha=alpha, beta=beta, temperature=temperature, warmup_epochs=warmup,
                      weight=weight, **kwargs)
    return Recipe(name, [term], student_loss_weight=slw,
                  weights={"student_loss": slw, "dkd": weight, "alpha": alpha, "beta": beta,
                           "temperature": temperature, "warmup_epochs": warmup,
                           "logit_standardization": bool(ls)})


def _dkd_ls(ctx, overrides):
    """DKD with logit standardization (Sun et al., CVPR 2024): the `dkd`
    recipe with both logits z-scored per sample before the temperature."""
    return _dkd(ctx, overrides, standardize=True, name="dkd_ls")


def _nkd(ctx, overrides):
    """NKD (Yang et al. 2023): the authors' defaults T = 1, γ = 1.5 (it
    ignores `temperature`), labels at weight 1, as the authors' code. The
    normalised loss is scale-free: no rule applies.

    Measured on the digits validation split
    (`benchmarks/recipe_rules.py --only 0,9,11,13,15,10,12,14`,
    digits-cnn, 20 epochs, 3 seeds, paired with scratch at 95.82, 97.21,
    97.56%; `docs/tuning/recipe_rules_digits_f10.json`):
    +0.35 ± 0.60 points (+0.70, +0.70, −0.35: no clear difference).
    """
    temperature = _take(overrides, "temperature", 1.0)
    gamma = _take(overrides, "gamma", 1.5)
    weight = _take(overrides, "weight", 1.0)
    slw = _take(overrides, "student_loss_weight", 1.0)
    return Recipe("nkd", [losses.NKD(temperature=temperature, gamma=gamma, weight=weight)],
                  student_loss_weight=slw,
                  weights={"student_loss": slw, "nkd": weight, "gamma": gamma,
                           "temperature": temperature})


def _fitnet(ctx, overrides):
    """FitNets (Romero et al. 2014): the student's stage-2 map, through a
    1×1-conv regressor, regresses onto the teacher's.

    Rule (one stage, hint weight balanced by gradient): the labels and the
    hint train together from the start, as in the benchmark code of the
    field (RepDistiller's and mdistiller's FitNet: CE + β·hint, one stage,
    no KD term), with β set when `fit` starts so that the weighted hint's
    gradient on the student's weights equals the labels'
    (`keras_kd.balance`, ratio 1) when the recipe is given a training
    `sample`; without one, RepDistiller's β = 100.

    `two_stage=True` gives the paper's schedule instead: hints alone for
    the first quarter of the epochs (at least 1), then the `kd` recipe's
    objective. Measured (docs/bench/fmnist-cnn-e15, 15 epochs, 3 seeds,
    paired with scratch): −0.73 ± 0.31 points; the hint stage spends a
    quarter of a short budget without labels. On the digits validation
    split (`benchmarks/recipe_rules.py`, 20 epochs): −1.51 ± 1.92.
    """
    if _take(overrides, "two_stage", False):
        return _fitnet_two_stage(ctx, overrides)
    hint_weight = _take(overrides, "hint_weight", None)
    slw = _take(overrides, "student_loss_weight", 1.0)
    term = losses.FitNet("stage2_relu", "stage2_relu", name="hint",
                         weight=100.0 if hint_weight is None else hint_weight)
    return _balanced(Recipe("fitnet", [term], student_loss_weight=slw,
                            weights={"student_loss": slw, "hint": term.weight}),
                     ctx, "hint", balance=hint_weight is None)


def _fitnet_two_stage(ctx, overrides):
    """FitNets as the paper: hints alone, then `kd` (see `_fitnet`)."""
    kd, kd_weights = _kd_term(ctx, overrides)
    hint_weight = _take(overrides, "hint_weight", 1.0)
    slw = _take(overrides, "student_loss_weight", KD_HARD_WEIGHT)
    terms = [losses.FitNet("stage2_relu", "stage2_relu", name="hint"), kd]
    stages = Stages([
        Stage(ctx.first, {"hint": hint_weight, "kd": 0.0, "student_loss": 0.0}, "hints"),
        Stage(ctx.rest, {"hint": 0.0, "kd": kd_weights["kd"], "student_loss": slw}, "kd"),
    ])
    return Recipe("fitnet", terms, callbacks=[stages],
                  weights={"stage 1 hint": hint_weight, "stage 2 student_loss": slw,
                           **{f"stage 2 {k}": v for k, v in kd_weights.items()}})


def _fsp(ctx, overrides):
    """FSP (Yim et al. 2017): the flow matrices for the first quarter of the
    epochs (at least 1), then the labels alone, as the paper.

    Rule: the FSP matrix is a mean over positions (size-normalised), and
    stage 1 trains on it alone: its weight (1) sets nothing under Adam.
    """
    weight = _take(overrides, "weight", 1.0)
    terms = [losses.FSP(pairs=[
        ("stage1_relu", "stage2_relu", "stage1_relu", "stage2_relu"),
        ("stage2_relu", "stage3_relu", "stage2_relu", "stage3_relu"),
    ])]
    stages = Stages([
        Stage(ctx.first, {"fsp": weight, "student_loss": 0.0}, "fsp"),
        Stage(ctx.rest, {"fsp": 0.0, "student_loss": 1.0}, "task"),
    ])
    return Recipe("fsp", terms, callbacks=[stages],
                  weights={"stage 1 fsp": weight, "stage 2 student_loss": 1.0})


def _overhaul_elements(ctx):
    """Σ_k stage_weight_k · h_k·w_k·c_k of the student's maps (None: unknown)."""
    if not ctx.student_maps or not all(t in ctx.student_maps for t in STAGES):
        return None
    n = len(STAGES)
    return sum(math.prod(ctx.student_maps[t]) / 2 ** (n - i - 1) for i, t in enumerate(STAGES))


def _overhaul(ctx, overrides):
    """Overhaul (Heo et al. 2019): the partial L2 between margin-ReLU'd
    teacher and connected student pre-ReLU maps, labels at weight 1.

    Rule (gradient balance, when the recipe is given a training `sample`):
    the weight is set when `fit` starts so that the weighted term's gradient
    on the student's weights equals the labels' (`keras_kd.balance`, ratio
    1). Fashion-MNIST pair, 3 student seeds: 1.9e-4, 2.7e-4, 2.8e-4.

    Why not the size rule it replaces (still used without a `sample`): the
    loss SUMS over every element of the maps (as the official code), so the
    published 1e-3 was rescaled by (reference elements ÷ this student's
    elements), the reference being the official CIFAR student's maps
    (WRN-16-2: 32×32×32, 16×16×64, 8×8×128, stage weights ¼, ½, 1). That
    keeps the strength per element, but the per-element mismatch is not the
    same on other data: at 2.6e-3 on Fashion-MNIST the term's gradient was
    12–13× the labels' and the student lost 2.81 ± 0.45 points at 15 epochs
    (docs/bench/fmnist-cnn-e15); on the digits validation split the rule
    (0.0213) cost 6.62 ± 5.13 points and the published 1e-3 0.46 ± 2.13.
    """
    elements = _overhaul_elements(ctx)
    scale = 1.0 if elements is None else OVERHAUL_REFERENCE_ELEMENTS / elements
    weight = _take(overrides, "weight", None)
    slw = _take(overrides, "student_loss_weight", 1.0)
    term = losses.Overhaul(list(STAGES), list(STAGES),
                           weight=1e-3 * scale if weight is None else weight)
    return _balanced(Recipe("overhaul", [term], student_loss_weight=slw,
                            weights={"student_loss": slw, "overhaul": term.weight}),
                     ctx, "overhaul", balance=weight is None)


def _review(ctx, overrides):
    """ReviewKD (Chen et al. 2021): weight 1, labels at weight 1 (the
    official CIFAR setting). Its HCL loss is a mean over elements at every
    pyramid level (size-normalised): no rule applies.

    Measured on the digits validation split
    (`benchmarks/recipe_rules.py --only 0,9,11,13,15,10,12,14`,
    digits-cnn, 20 epochs, 3 seeds, paired with scratch at 95.82, 97.21,
    97.56%; `docs/tuning/recipe_rules_digits_f10.json`):
    weight 1 +0.12 ± 0.73 points (+0.35, +0.70, −0.70: no clear
    difference); weight 0.1 −0.23 ± 0.20 (−0.35, 0.00, −0.35).
    """
    weight = _take(overrides, "weight", 1.0)
    slw = _take(overrides, "student_loss_weight", 1.0)
    return Recipe("review", [losses.ReviewKD(list(STAGES), list(STAGES), weight=weight)],
                  student_loss_weight=slw, weights={"student_loss": slw, "review": weight})


def _at(ctx, overrides):
    """Attention transfer (Zagoruyko & Komodakis 2017), labels at weight 1.

    Rule (gradient balance, when the recipe is given a training `sample`):
    β is set when `fit` starts so that the weighted AT term's gradient on
    the student's weights equals the labels' (`keras_kd.balance`, ratio 1).
    Fashion-MNIST pair, 3 student seeds: β = 51, 51, 82.

    Why not the published β = 1000 rescaled by map area (1000·h·w/32², the
    rule this replaces, still used without a `sample`): at 766 for 28×28
    maps its gradient was 15–20× the labels' and the student lost
    3.10 ± 0.07 points at 15 epochs (docs/bench/fmnist-cnn-e15); on the
    digits validation split β = 1000 cost 30 points. The area rule assumes
    the student's attention maps start as far from the teacher's as on
    CIFAR; the gradient rule measures how far they are.
    """
    beta = _take(overrides, "weight", None)
    slw = _take(overrides, "student_loss_weight", 1.0)
    term = losses.AttentionTransfer(list(STAGES), list(STAGES),
                                    weight=1000.0 * ctx.area_ratio() if beta is None else beta)
    return _balanced(Recipe("at", [term], student_loss_weight=slw,
                            weights={"student_loss": slw, "at": term.weight}),
                     ctx, "at", balance=beta is None)


def _balanced(plan, ctx, key, balance):
    """Adds the gradient-balance callback to a one-term recipe when a
    training `sample` was given and the weight was not overridden; the
    weight it sets is written into `plan.weights[key]` when `fit` starts."""
    if balance and ctx.sample is not None:
        from keras_kd.balance import BalanceWeights

        x, y = ctx.sample
        name = plan.terms[0].metric_name
        plan.callbacks.append(BalanceWeights(x, y, [name], ratio=GRADIENT_RATIO,
                                             record=plan.weights, record_keys={name: key}))
        plan.weights[key] = "balanced when fit starts"
        plan.weights[f"{key} gradient ratio"] = GRADIENT_RATIO
    return plan


def _rkd(ctx, overrides):
    """RKD (Park et al. 2019) on the pooled features, the term's defaults."""
    return _simple("rkd", losses.RKD, ("pool", "pool"), overrides)


def _pkt(ctx, overrides):
    """PKT (Passalis & Tefas 2018) on the pooled features, the term's defaults."""
    return _simple("pkt", losses.PKT, ("pool", "pool"), overrides)


def _sp(ctx, overrides):
    """SP (Tung & Mori 2019) on the last stage, the term's defaults."""
    return _simple("sp", losses.SP, ("stage3_relu", "stage3_relu"), overrides)


def _simple(name, cls, args, overrides):
    kwargs = {}
    if "weight" in overrides:
        kwargs["weight"] = overrides.pop("weight")
    term = cls(*args, **kwargs)
    slw = _take(overrides, "student_loss_weight", 1.0)
    return Recipe(name, [term], student_loss_weight=slw,
                  weights={"student_loss": slw, name: float(term.weight)})


RECIPES = {
    "scratch": _scratch,
    "kd": _kd,
    "kd_ls": _kd_ls,
    "dist": _dist,
    "fitnet": _fitnet,
    "fsp": _fsp,
    "overhaul": _overhaul,
    "review": _review,
    "at": _at,
    "rkd": _rkd,
    "pkt": _pkt,
    "sp": _sp,
    "dkd": _dkd,
    "dkd_ls": _dkd_ls,
    "nkd": _nkd,
}
METHODS = tuple(RECIPES)
LOGIT_METHODS = ("kd", "kd_ls", "dist", "dkd", "dkd_ls", "nkd")


def recipe(name, epochs, temperature=4.0, *, teacher=None, student=None, num_classes=None,
           sample=None, **overrides):
    """The recipe of method `name` for a run of `epochs` epochs.

    Args:
        name: one of `METHODS`.
        epochs: the run's length (the budget rules read it).
        temperature: T of the temperature-based logit terms (KD, DKD).
        teacher, student: the models, so the rules read map sizes and the
            class count; without them the published weights are kept.
        num_classes: the class count, when no model gives it.
        sample: `(x, y)`, a labelled batch of TRAINING data (a few hundred
            samples). With it, the feature recipes whose published weight
            depends on the maps' scale (`at`, `overhaul`) set their weight
            by gradient balance when `fit` starts (`keras_kd.balance`; the
            recipe's callbacks do it); without it, by the size rules.
        **overrides: replace a rule's result (`weight`, `student_loss_weight`,
            `temperature`, `logit_standardization`, `beta`, `alpha`, `gamma`,
            `warmup_epochs`, `hint_weight`; see each recipe).

    Returns:
        A `Recipe`; `Recipe.weights` lists the effective weights.
    """
    if name not in RECIPES:
        raise ValueError(f"Unknown method '{name}'; known: {', '.join(METHODS)}.")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}.")
    if num_classes is None:
        for model in (student, teacher):
            if model is not None and getattr(model, "outputs", None):
                num_classes = int(model.outputs[0].shape[-1])
                break
    if sample is not None and (not isinstance(sample, (tuple, list)) or len(sample) != 2):
        raise ValueError("sample must be a labelled training batch (x, y), got "
                         f"{type(sample).__name__}.")
    ctx = Context(epochs=epochs, temperature=temperature, num_classes=num_classes,
                  student_maps=stage_maps(student), sample=sample)
    overrides = dict(overrides)
    plan = RECIPES[name](ctx, overrides)
    if overrides:
        raise ValueError(f"Recipe '{name}' does not take {sorted(overrides)}; see "
                         f"keras_kd.zoo.recipes.RECIPES['{name}'].__doc__.")
    return plan
