"""A run's objects built from its validated config: models, terms, optimizer."""

import inspect

from keras_kd.tools.config import validate as config_lib


def build_model(spec, input_shape, num_classes, search_path=()):
    """A model from a `.keras` path, a zoo name or `module:function`.

    A function is called with `input_shape=` and `num_classes=` when its
    signature takes them (or **kwargs), else with no arguments.
    """
    import keras

    from keras_kd import zoo

    kind = config_lib.model_kind(spec)
    if kind == "keras":
        return keras.saving.load_model(spec)
    if kind == "zoo":
        return zoo.get(spec, input_shape=input_shape, num_classes=num_classes)
    function = config_lib.import_function(spec, search_path)
    params = inspect.signature(function).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in (("input_shape", input_shape), ("num_classes", num_classes))
              if takes_all or k in params}
    model = function(**kwargs)
    if not isinstance(model, keras.Model):
        raise TypeError(f"'{spec}' returned {type(model).__name__}, not a keras.Model")
    return model


def weight_schedule(raw, weight):
    from keras_kd.regimes import schedules

    if raw is None:
        return None
    if raw["type"] == "constant":
        return schedules.Constant(weight)
    if raw["type"] == "linear_warmup":
        return schedules.LinearWarmup(weight, raw["warmup_epochs"], raw.get("start", 0.0) * weight)
    return schedules.Piecewise(raw["boundaries_epochs"], [f * weight for f in raw["factors"]])


def build_terms(cfg, teacher, student=None, sample=None):
    """`(terms, {term name: schedule}, callbacks, student_loss_weight,
    fit_epochs)` from `method` or `terms`.

    `sample` (a training batch `(x, y)`) lets a `method`'s recipe balance its
    feature weight by gradient (`keras_kd.zoo.recipes.recipe`). `fit_epochs`
    is `cfg["epochs"]`, or more when the recipe adds an initialisation stage
    ahead of the run (`fsp`)."""
    from keras_kd import zoo
    from keras_kd.zoo import recipes as methods

    if cfg["method"] is not None:
        recipe = methods.recipe(cfg["method"], cfg["epochs"], teacher=teacher, student=student,
                                sample=sample)
        return (recipe.terms, {}, list(recipe.callbacks), recipe.student_loss_weight,
                recipe.epochs)
    terms, scheduled = [], {}
    for i, raw in enumerate(cfg["terms"]):
        kwargs = {k: v for k, v in raw.items() if k not in ("type", "schedule")}
        if kwargs.get("bn_layers") == "auto":
            kwargs["bn_layers"] = zoo.overhaul_bn_layers(teacher, tuple(kwargs["teacher_layers"]))
        if raw["type"] == "FSP":
            kwargs["pairs"] = [tuple(p) if isinstance(p, list) else p for p in kwargs["pairs"]]
        term = config_lib.term_class(raw["type"])(**kwargs)
        if raw.get("schedule"):
            scheduled[term.name] = weight_schedule(raw["schedule"], term.weight)
        terms.append(term)
    return terms, scheduled, [], cfg["student_loss_weight"], cfg["epochs"]


def build_optimizer(opt, steps_per_epoch, epochs):
    """The Keras optimizer; epoch boundaries become steps with the real
    `steps_per_epoch` (a boundary is the first epoch with the new rate)."""
    import keras

    lr = opt["learning_rate"]
    schedule = opt["schedule"]
    if schedule and schedule["type"] == "piecewise":
        bounds = schedule["boundaries_epochs"]
        if "factors" in schedule:
            values = [lr * f for f in schedule["factors"]]
        else:
            values = [lr * schedule["factor"] ** i for i in range(len(bounds) + 1)]
        # PiecewiseConstantDecay keeps the old value AT a boundary step; the
        # first step of epoch b is optimizer.iterations == b * steps.
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            [b * steps_per_epoch - 1 for b in bounds], values)
    elif schedule and schedule["type"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=epochs * steps_per_epoch,
            alpha=schedule.get("min_learning_rate", 0.0) / lr)
    decoupled = opt["weight_decay"] if opt["weight_decay_mode"] == "decoupled" else None
    decoupled = decoupled or None
    if opt["name"] == "sgd":
        return keras.optimizers.SGD(lr, momentum=opt["momentum"], nesterov=opt["nesterov"],
                                    weight_decay=decoupled)
    if opt["name"] == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=decoupled or 0.0)
    return keras.optimizers.Adam(lr, weight_decay=decoupled)


def add_coupled_weight_decay(model, weight_decay):
    """PyTorch-style (coupled) weight decay: the gradient of every trainable
    variable gets `weight_decay · w` added, through an L2 penalty
    `weight_decay / 2 · Σ w²` on each variable without a regularizer (it
    counts in the logged loss; exported models do not carry it)."""
    import keras

    if not weight_decay:
        return
    penalty = keras.regularizers.L2(weight_decay / 2.0)
    for variable in model.trainable_variables:
        if variable.regularizer is None:
            variable.regularizer = penalty
