"""What the recipes' rules read: the reference setting, the run's budget and map sizes.

`keras_kd.zoo.recipes` holds the rules themselves; this module holds the
constants they rescale from (the papers' CIFAR setting), the `Context` a
rule reads, the `Recipe` it returns, and the two helpers every rule uses
(`take`, `kd_term`).
"""

import dataclasses

from keras_kd import losses

STAGES = ("stage1_relu", "stage2_relu", "stage3_relu")
# Methods whose feature pairs must have equal channel counts (no adapter).
WIDTH_MATCHED = ("fsp",)
# The setting the papers' weights were published for: CIFAR (32×32 input),
# 240 epochs (RepDistiller / mdistiller).
REFERENCE_INPUT_AREA = 32 * 32
REFERENCE_EPOCHS = 240
# Official Overhaul CIFAR student (WRN-16-2): stage maps 32×32×32,
# 16×16×64, 8×8×128, stage weights 1/4, 1/2, 1 (Heo et al. 2019 code).
OVERHAUL_REFERENCE_ELEMENTS = (32 * 32 * 32) / 4 + (16 * 16 * 64) / 2 + 8 * 8 * 128
# KD and hard-label weights: independent, 1·CE + 1·T²·KL. Measured on the digits
# validation split (benchmarks/recipe_rules.py, 3 seeds): at least as good as
# the convex 0.1·CE + 0.9·KD of Hinton et al. / keras.distillation (paired
# 0, +0.70, +0.35 points). See docs/tuning.md.
KD_WEIGHT = 1.0
# Feature terms balanced by gradient (keras_kd.balance): the weighted term
# pulls on the student's weights as hard as the labels when training starts.
GRADIENT_RATIO = 1.0
# Overhaul's ratio: half the labels'. Its partial L2 sums over every element
# of three stages' maps; at ratio 1 it cost 0.33 points on held-out Fashion-
# MNIST training images, at 0.5 it did not (docs/tuning.md).
OVERHAUL_GRADIENT_RATIO = 0.5
# How the balanced feature weight changes over the run (keras_kd.balance.decay_factor).
FEATURE_DECAY = "linear"
KD_HARD_WEIGHT = 1.0


@dataclasses.dataclass
class Recipe:
    """Terms, the hard-label weight and callbacks of one method, plus the
    effective weights the rules chose (`weights`, for reports)."""

    name: str
    terms: list
    student_loss_weight: float = 1.0
    callbacks: list = dataclasses.field(default_factory=list)
    weights: dict = dataclasses.field(default_factory=dict)
    # The epochs `fit` must run: the run's `epochs` (None, filled in by
    # `recipe`), or more when the method adds an initialisation stage
    # ahead of them (FSP).
    epochs: int = None


@dataclasses.dataclass
class Context:
    """What the rules read from the run: the budget and the models' shapes."""

    epochs: int
    temperature: float = 4.0
    num_classes: int = None
    # {tap name: (height, width, channels)} of the student's stage maps; None
    # when no model was given (the rules then assume the reference sizes).
    student_maps: dict = None
    # (x, y): a training batch for the gradient-balance rules; None: size rules.
    sample: tuple = None

    @property
    def first(self):
        """Epochs of the first stage of a two-stage method (a quarter, >= 1)."""
        return max(1, self.epochs // 4)

    @property
    def rest(self):
        return max(1, self.epochs - self.first)

    def area_ratio(self, tap=STAGES[0]):
        """Area of the student's `tap` map ÷ the reference input's area."""
        if not self.student_maps or tap not in self.student_maps:
            return 1.0
        h, w, _ = self.student_maps[tap]
        return (h * w) / REFERENCE_INPUT_AREA

    def budget(self):
        """The run's length as a fraction of the papers' 240 epochs (≤ 1)."""
        return min(1.0, self.epochs / REFERENCE_EPOCHS)


def stage_maps(model, taps=STAGES):
    """{tap: (h, w, c)} of `model`'s layers named in `taps` (those it has)."""
    if model is None:
        return None
    maps = {}
    for tap in taps:
        try:
            shape = model.get_layer(tap).output.shape
        except (ValueError, AttributeError):
            continue
        if len(shape) == 4 and all(d is not None for d in shape[1:]):
            maps[tap] = tuple(int(d) for d in shape[1:])
    return maps


def take(overrides, key, default):
    return overrides.pop(key, default)


def kd_term(ctx, overrides, name="kd", standardize=False):
    temperature = take(overrides, "temperature", ctx.temperature)
    weight = take(overrides, "weight", KD_WEIGHT)
    ls = take(overrides, "logit_standardization", standardize)
    kwargs = {"logit_standardization": True} if ls else {}
    return losses.KD(temperature=temperature, weight=weight, name=name, **kwargs), \
        {name: weight, "temperature": temperature, "logit_standardization": bool(ls)}
