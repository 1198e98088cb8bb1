"""The feature-based recipes of `keras_kd.zoo.recipes` (FitNets, FSP,
Overhaul, ReviewKD, AT, RKD, PKT, SP): one small function each, its rule and
the measurement behind it in its docstring. `recipes.RECIPES` is the table.
"""

import math

from keras_kd import losses
from keras_kd.checks.numbers import is_integer
from keras_kd.regimes.stages import Stage, Stages
from keras_kd.zoo.recipe_context import (
    FEATURE_DECAY,
    GRADIENT_RATIO,
    KD_HARD_WEIGHT,
    OVERHAUL_GRADIENT_RATIO,
    OVERHAUL_REFERENCE_ELEMENTS,
    STAGES,
    Recipe,
)
from keras_kd.zoo.recipe_context import kd_term as _kd_term
from keras_kd.zoo.recipe_context import take as _take


def _fitnet(ctx, overrides):
    """FitNets (Romero et al. 2014): the student's stage-2 map, through a
    1×1-conv regressor, regresses onto the teacher's.

    Rule (one stage, hint weight balanced by gradient): the labels and the
    hint train together from the start, as in the benchmark code of the
    field (RepDistiller's and mdistiller's FitNet: CE + β·hint, one stage,
    no KD term), with β set when `fit` starts so that the weighted hint's
    gradient on the student's weights equals the labels'
    (`keras_kd.balance`, ratio 1) when the recipe is given a training
    `sample`; without one, RepDistiller's β = 100. The weight then decays
    linearly to 0 over the run (`decay`, see `_at`). Fashion-MNIST pair
    (docs/bench/fmnist-cnn-e15, 15 epochs, 3 seeds, paired with scratch):
    β = 1.14, 1.62, 2.14 at the start; decayed −0.26 ± 0.13 points (−0.31,
    −0.36, −0.12), constant −0.26 ± 0.10 (−0.36, −0.17, −0.24). Held-out
    training images (docs/tuning.md): decayed −0.23 ± 0.36, constant
    −0.31 ± 0.38 (decayed higher on every seed).

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
                     ctx, "hint", balance=hint_weight is None, overrides=overrides)


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
    """FSP (Yim et al. 2017): an initialisation stage on the flow matrices
    alone, then the run's `epochs` on the labels alone, as the paper.

    Rule: the initialisation stage comes BEFORE the run's epochs, as in the
    paper (stage 2 is ordinary training) and in RepDistiller (30
    `init_epochs` ahead of its 240): `Recipe.epochs` = `init_epochs` +
    `epochs`, and `fit` must run that many (`keras-kd bench` and
    `keras-kd distill` do). `init_epochs` defaults to a quarter of the run
    (at least 1). The FSP matrix is a mean over positions (size-normalised)
    and stage 1 trains on it alone: its weight (1) sets nothing under Adam.

    Why not inside the run: taking a quarter of a short budget away from
    the labels cost the student 0.53 ± 0.47 points at 15 epochs
    (docs/bench/fmnist-cnn-e15, 3 seeds), and the FSP-initialised student
    learns no faster than scratch (docs/fsp-fast-optimization.md). Ahead
    of the run (3 + 15 epochs): −0.16 ± 0.34 points (−0.44, −0.26, +0.21),
    same bench. The cost: the init epochs run the teacher, about twice a
    label epoch each.
    """
    weight = _take(overrides, "weight", 1.0)
    init = _take(overrides, "init_epochs", ctx.first)
    if not is_integer(init) or init < 1:
        raise ValueError(f"fsp: init_epochs must be an int >= 1, got {init!r}.")
    init = int(init)
    terms = [losses.FSP(pairs=[
        ("stage1_relu", "stage2_relu", "stage1_relu", "stage2_relu"),
        ("stage2_relu", "stage3_relu", "stage2_relu", "stage3_relu"),
    ])]
    stages = Stages([
        Stage(init, {"fsp": weight, "student_loss": 0.0}, "fsp"),
        Stage(ctx.epochs, {"fsp": 0.0, "student_loss": 1.0}, "task"),
    ])
    return Recipe("fsp", terms, callbacks=[stages], epochs=init + ctx.epochs,
                  weights={"stage 1 fsp": weight, "stage 1 epochs (before the run)": init,
                           "stage 2 student_loss": 1.0})


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
    on the student's weights is half the labels' (`keras_kd.balance`,
    `gradient_ratio` 0.5, `OVERHAUL_GRADIENT_RATIO`), then decays linearly
    to 0 over the run (`decay`, see `_at`). Fashion-MNIST pair (the bench's
    first training batch), seed 0: 9.4e-5 at the start.

    Why half: on 10,000 held-out Fashion-MNIST training images (docs/
    tuning.md, 15 epochs, 3 seeds, paired with scratch), decayed, ratio 1
    cost −0.33 ± 0.09 points (below scratch on every seed), ratio 0.5
    −0.04 ± 0.22 and ratio 0.25 −0.02 ± 0.13 (no clear difference); 0.5 is
    the strongest pull that did not cost accuracy. Constant at ratio 1:
    −0.58 ± 0.09. Bench (docs/bench/fmnist-cnn-e15, 15 epochs, 3 seeds,
    paired with scratch), run once after the choice: ratio 0.5, decayed
    −0.05 ± 0.16 (−0.17, −0.12, +0.13); ratio 1, decayed −0.40 ± 0.65
    (−0.98, −0.52, +0.31); ratio 1, constant −0.64 ± 0.45.

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
                     ctx, "overhaul", balance=weight is None, overrides=overrides,
                     ratio=OVERHAUL_GRADIENT_RATIO)


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
    Fashion-MNIST pair (the bench's first training batch), seeds 0–2:
    β = 55.5, 55.8, 90.8.

    Decay (`decay="linear"`, the default `FEATURE_DECAY`): epoch e of E
    uses (1 − e/E) of the balanced β, so the maps guide the student early
    and the labels alone settle it at the end (FitNets' hints-then-labels
    made smooth). Held-out training images (docs/tuning.md, 3 seeds):
    decayed −0.22 ± 0.41 points against scratch, constant −0.36 ± 0.42
    (decayed higher on every seed). Bench (docs/bench/fmnist-cnn-e15,
    15 epochs, 3 seeds, paired with scratch): decayed −0.16 ± 0.42 points
    (−0.59, −0.14, +0.25); constant −0.32 ± 0.38; the area rule
    −3.10 ± 0.07.

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
                     ctx, "at", balance=beta is None, overrides=overrides)


def _balanced(plan, ctx, key, balance, overrides, ratio=GRADIENT_RATIO):
    """Adds the gradient-balance callback to a one-term recipe when a
    training `sample` was given and the weight was not overridden; the
    weight it sets is written into `plan.weights[key]` when `fit` starts.
    `decay` (an override; default `FEATURE_DECAY`) decays the balanced
    weight over the run (`keras_kd.balance.BalanceWeights`);
    `gradient_ratio` (an override; default `ratio`) is the weighted term's
    gradient over the labels' that the balance aims for."""
    decay = _take(overrides, "decay", FEATURE_DECAY)
    ratio_given = "gradient_ratio" in overrides
    ratio = _take(overrides, "gradient_ratio", ratio)
    from keras_kd.balance import decay_factor, gradient_ratios

    # A bad decay or ratio is refused here, not when fit starts.
    decay_factor(decay, 0, 1)
    ratio = gradient_ratios([key], ratio)[key]  # a float, for the reports' JSON
    if ratio_given and not (balance and ctx.sample is not None):
        why = ("its weight was given explicitly" if not balance
               else "no training batch was given (sample=(x, y))")
        raise ValueError(f"Recipe '{plan.name}': gradient_ratio={ratio!r} sets the weight by "
                         f"gradient balance, but {why}, so nothing would be balanced. Pass "
                         "sample=(x, y) and no weight, or drop gradient_ratio.")
    if balance and ctx.sample is not None:
        from keras_kd.balance import BalanceWeights

        x, y = ctx.sample
        name = plan.terms[0].metric_name
        plan.callbacks.append(BalanceWeights(x, y, [name], ratio=ratio,
                                             record=plan.weights, record_keys={name: key},
                                             decay=decay))
        plan.weights[key] = "balanced when fit starts"
        plan.weights[f"{key} gradient ratio"] = ratio
    elif decay is not None:
        # A fixed weight (an override, or a size rule) decays the same way.
        from keras_kd.regimes.schedules import LossWeightScheduler

        start = plan.terms[0].weight
        plan.callbacks.append(LossWeightScheduler({
            plan.terms[0].metric_name: lambda epoch, step=None: start * decay_factor(
                decay, epoch, ctx.epochs)}))
    if decay is not None:
        plan.weights[f"{key} decay"] = decay
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
