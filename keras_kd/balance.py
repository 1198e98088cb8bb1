"""Gradient-balanced term weights: set a distillation term's weight from how
hard it pulls on the student, measured on the user's own data and models.

A feature term's published weight is tied to the scale of the maps it was
set for: Overhaul's partial L2 *sums* over every element of the maps, and
attention transfer averages over positions, so the same weight is a
different strength on another network or input size. Rescaling by sizes
alone (the old recipe rules) left both terms pulling 12–15× harder on the
student's weights than the labels on Fashion-MNIST, and both cost about 3
points there (docs/bench/fmnist-cnn-e15).

The rule here measures instead of extrapolating. On one training batch,
with the freshly initialised student, it computes the gradient norm of each
part of the objective with respect to the student's trainable weights
(training mode, nothing changed) and sets

    weight_term = ratio · student_loss_weight · ‖∇θ L_labels‖ / ‖∇θ L_term‖

so the weighted term pulls on θ `ratio` times as hard as the labels do when
training starts (the equal-rate starting point of GradNorm, Chen et al.
2018). At `ratio = 1` this reproduces the setting of the feature method
that pays at its published weight: ReviewKD's weight 1 gives a ratio of
0.85–0.90 on the Fashion-MNIST pair.

Example:

```python
distiller.compile(optimizer="adam", loss=loss)
balance_weights(distiller, x_train[:256], y_train[:256], {"attention": 1.0})
# or, applied when fit starts:
distiller.fit(ds, callbacks=[BalanceWeights(x_train[:256], y_train[:256], ["attention"])])
```
"""

import math
import numbers

import keras
from keras import ops

from keras_kd.gradient_norms import part_gradient_norms


# The weights live in float32 variables: outside this range they would
# silently become inf or 0.
_FLOAT32_MAX = 3.0e38
_FLOAT32_TINY = 1.2e-38


def gradient_norms(distiller, x, y, sample_weight=None):
    """`{part: ‖∂part/∂θ‖₂}`: the gradient norm of each unweighted part of
    `distiller`'s objective ("student_loss" and each term's metric name) with
    respect to the student's trainable weights θ, on one batch, in training
    mode. No variable changes (BatchNormalization statistics included).

    The distiller must be compiled (the student loss is set by `compile`).
    """
    if getattr(distiller, "_student_loss_fn", None) is None:
        raise ValueError(
            f"gradient_norms needs a compiled Distiller ('{distiller.name}' has no "
            "student loss yet): call distiller.compile(optimizer=..., loss=...) first.")
    # Dict / list inputs (multi-input students) are converted leaf by leaf.
    sizes = {int(ops.shape(leaf)[0]) for leaf in keras.tree.flatten(x)}
    if y is not None:
        sizes |= {int(ops.shape(leaf)[0]) for leaf in keras.tree.flatten(y)}
    if len(sizes) > 1:
        raise ValueError(f"gradient_norms: the batch's inputs and labels have different "
                         f"numbers of samples {sorted(sizes)}; pass x and y of one batch.")
    x = keras.tree.map_structure(ops.convert_to_tensor, x)
    y = None if y is None else keras.tree.map_structure(ops.convert_to_tensor, y)
    if sample_weight is not None:
        sample_weight = ops.convert_to_tensor(sample_weight, "float32")
    teacher_view = distiller._teacher_outputs(x)
    variables = list(distiller.student.trainable_variables)
    return part_gradient_norms(
        distiller, x, y, sample_weight, teacher_view, variables)


def gradient_ratios(terms, ratio):
    """`{term name: target ratio}` from a name, a list of names (each gets
    `ratio`) or a dict; a ratio that is not a finite number > 0 is a
    ValueError naming the term."""
    if isinstance(terms, str):
        terms = [terms]
    if isinstance(terms, dict):
        wanted = dict(terms)
    else:
        wanted = {name: ratio for name in terms}
    for name, value in wanted.items():
        # numbers.Real: numpy scalars (np.float32(0.5)) are ratios too.
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"The gradient ratio for term '{name}' must be a finite number "
                             f"> 0, got {value!r}.")
    return {name: float(value) for name, value in wanted.items()}


def balance_weights(distiller, x, y, terms, ratio=1.0, sample_weight=None):
    """Sets each named term's weight so that, on batch `(x, y)`, its weighted
    gradient on the student's weights is `ratio` × the weighted gradient of
    the student's label loss (see the module docstring for the formula).

    Args:
        distiller: a compiled `Distiller`.
        x, y: a training batch (inputs and labels); never a test split.
        terms: term metric names (`term.metric_name`), or a dict
            `{name: ratio}` to give each its own ratio.
        ratio: the target ratio when `terms` is a list.

    Returns:
        `{name: weight}`, the weights assigned.
    """
    wanted = gradient_ratios(terms, ratio)
    by_name = {term.metric_name: term for term in distiller.distillation_losses}
    unknown = sorted(set(wanted) - set(by_name))
    if unknown:
        raise ValueError(f"balance_weights: the distiller has no term named {unknown}; its "
                         f"terms are {sorted(by_name)}.")
    if y is None:
        raise ValueError("balance_weights needs labels: the weights are set against the "
                         "student's label loss. Pass a labelled training batch (x, y).")
    norms = gradient_norms(distiller, x, y, sample_weight)
    labels = norms.get("student_loss", 0.0) * float(distiller.student_loss_weight)
    if not labels > 0 or not math.isfinite(labels):
        raise ValueError(
            f"balance_weights: the student's label loss has no gradient on this batch "
            f"(‖∇‖ = {norms.get('student_loss')}, student_loss_weight = "
            f"{distiller.student_loss_weight}); balance against a labelled batch with "
            "student_loss_weight > 0.")
    chosen = {}
    for name, target in wanted.items():
        norm = norms[name]
        if not norm > 0 or not math.isfinite(norm):
            raise ValueError(
                f"balance_weights: term '{name}' ({type(by_name[name]).__name__}) has gradient "
                f"norm {norm} on the student's weights for this batch, so no weight can "
                "balance it. Check that its student taps feed the student's output, and "
                "that the batch is not one the term ignores.")
        weight = target * labels / norm
        if not _FLOAT32_TINY <= weight <= _FLOAT32_MAX:
            raise ValueError(
                f"balance_weights: term '{name}' would get weight {weight:.3g} (ratio {target}, "
                f"‖∇labels‖ {labels:.3g}, ‖∇term‖ {norm:.3g}), outside float32's range; "
                "choose a ratio that gives a representable weight.")
        chosen[name] = weight
        by_name[name].weight = weight
    return chosen


DECAYS = (None, "linear", "cosine")


def decay_factor(decay, epoch, epochs):
    """The fraction of the balanced weight used in epoch `epoch` (0-based) of
    `epochs`: 1 throughout for `None`; `1 − epoch/epochs` for "linear";
    `(1 + cos(π·epoch/epochs)) / 2` for "cosine". The first epoch gets the
    whole weight and the last a small, non-zero part of it."""
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}.")
    if decay is None:
        return 1.0
    progress = min(1.0, max(0.0, epoch / max(1, epochs)))
    if decay == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class BalanceWeights(keras.callbacks.Callback):
    """Runs `balance_weights` on the distiller when `fit` starts, and
    optionally decays the balanced weights over the run.

    Args:
        x, y: a training batch (a few hundred samples is plenty).
        terms, ratio: as `balance_weights`.
        record: an optional dict updated with `{name: weight}` once set
            (`keras_kd.zoo.recipes.Recipe.weights` uses it for reports).
        record_keys: `{term name: key}` to write into `record` under
            other keys.
        decay: None (the balanced weight throughout), "linear" or "cosine":
            at the start of epoch e of E (`fit`'s `epochs`) each term's weight
            is its balanced weight × `decay_factor(decay, e, E)`, so the
            term pulls as hard as asked when training starts and the last
            epochs, where the learning rate settles the weights, are
            driven by the labels. The weights in use are logged per epoch
            as `"<term>_weight"`.

    `chosen` holds the balanced weights after `on_train_begin`; a second
    `fit` of the same distiller keeps them, another distiller is balanced
    anew. A later schedule on the same term (`LossWeightScheduler`,
    `Stages`) overrides them.
    """

    def __init__(self, x, y, terms, ratio=1.0, record=None, record_keys=None, decay=None):
        super().__init__()
        decay_factor(decay, 0, 1)  # refuses an unknown decay now, not when fit starts
        self.x, self.y = x, y
        self.terms = gradient_ratios(terms, ratio)
        self.record = record
        self.record_keys = dict(record_keys or {})
        self.decay = decay
        self.chosen = None
        self._balanced = None  # the distiller the weights were set for
        self._in_use = {}

    def on_train_begin(self, logs=None):
        if self.chosen is not None and self._balanced is self.model:
            return  # a second fit of the same distiller keeps its weights
        self.chosen = balance_weights(self.model, self.x, self.y, self.terms)
        self._balanced = self.model
        if self.record is not None:
            for name, weight in self.chosen.items():
                self.record[self.record_keys.get(name, name)] = weight

    def on_epoch_begin(self, epoch, logs=None):
        if self.decay is None or not self.chosen:
            return
        epochs = (self.params or {}).get("epochs") or 1
        factor = decay_factor(self.decay, epoch, epochs)
        by_name = {term.metric_name: term for term in self.model.distillation_losses}
        for name, weight in self.chosen.items():
            self._in_use[name] = weight * factor
            by_name[name].weight = self._in_use[name]

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            for name, weight in self._in_use.items():
                logs[f"{name}_weight"] = weight
