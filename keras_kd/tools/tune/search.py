"""`keras-kd tune`'s KerasTuner side: each method's search space and the hypermodel.

`SPACES` maps a method to `function(hp, default recipe) -> recipe overrides`;
`make_hypermodel` builds each trial's Distiller from the recipe with those
overrides, so the recipe's own rules still apply to what is not searched.
"""


def keras_tuner_module():
    """The `keras_tuner` module, or an ImportError that says how to install it."""
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


def _kd_space(hp, default):
    """KD / KD+LS: T, the KD and label weights (the recipe's as defaults),
    standardization on/off."""
    return {
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0, 8.0],
                                 default=default.weights["temperature"]),
        # The recipe's own weight joins the list (9 for kd_ls), so the search
        # can keep it; kd's list is the one docs/tuning-fmnist.md searched.
        "weight": hp.Choice("weight", sorted({0.5, 0.9, 1.0, 2.0, default.weights["kd"]}),
                            default=default.weights["kd"]),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0],
                                         default=default.student_loss_weight),
        **_standardization(hp, "KD", default.weights.get("logit_standardization", False)),
    }


def _dkd_space(hp, default):
    return {
        # Each list holds the recipe's own value, the search's starting point.
        "temperature": hp.Choice("temperature",
                                 sorted({1.0, 2.0, 4.0, 8.0, default.weights["temperature"]}),
                                 default=default.weights["temperature"]),
        "alpha": hp.Choice("alpha", [0.5, 1.0, 2.0], default=1.0),
        "beta": hp.Choice("beta", sorted({0.5, 1.0, 2.0, 4.0, 8.0, default.weights["beta"]}),
                          default=default.weights["beta"]),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0], default=1.0),
        **_standardization(hp, "DKD", default.weights.get("logit_standardization", False)),
    }


def _dist_space(hp, default):
    return {
        "beta": hp.Choice("beta", [0.5, 1.0, 2.0], default=default.weights["beta"]),
        "gamma": hp.Choice("gamma", [0.5, 1.0, 2.0], default=default.weights["gamma"]),
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0],
                                 default=default.weights["temperature"]),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.5, 1.0],
                                         default=default.student_loss_weight),
    }


def _nkd_space(hp, default):
    return {
        "gamma": hp.Choice("gamma", [0.5, 1.0, 1.5, 2.0], default=1.5),
        "temperature": hp.Choice("temperature", [1.0, 2.0, 4.0], default=1.0),
        "weight": hp.Choice("weight", [0.5, 1.0, 2.0], default=1.0),
    }


def _mlkd_space(hp, default):
    """MLKD / MLKD+LS: T₀ (the first temperature), the term's and the labels'
    weights, each list holding the recipe's own value."""
    return {
        "temperature": hp.Choice("temperature",
                                 sorted({1.0, 2.0, 4.0, default.weights["temperature"]}),
                                 default=default.weights["temperature"]),
        "weight": hp.Choice("weight", sorted({0.5, 0.9, 1.0, 9.0, default.weights["mlkd"]}),
                            default=default.weights["mlkd"]),
        "student_loss_weight": hp.Choice(
            "student_loss_weight", sorted({0.1, 0.5, 1.0, default.student_loss_weight}),
            default=default.student_loss_weight),
    }


def _wttm_space(hp, default):
    return {
        "gamma": hp.Choice("gamma", sorted({0.1, 0.2, 0.25, 0.5, default.weights["gamma"]}),
                           default=default.weights["gamma"]),
        "weight": hp.Choice("weight", sorted({1.0, 2.0, 4.0, 8.0, default.weights["wttm"]}),
                            default=default.weights["wttm"]),
        "student_loss_weight": hp.Choice("student_loss_weight", [0.5, 1.0],
                                         default=default.student_loss_weight),
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


def _fitnet_space(hp, default):
    """FitNets (one stage): the hint's weight as a factor of the recipe's, and
    the labels' weight."""
    factor = hp.Choice("weight_factor", [0.01, 0.1, 1.0, 10.0], default=1.0)
    return {
        "hint_weight": float(default.weights["hint"]) * factor,
        "student_loss_weight": hp.Choice("student_loss_weight", [0.1, 0.5, 1.0],
                                         default=default.student_loss_weight),
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
    "mlkd": _mlkd_space,
    "mlkd_ls": _mlkd_space,
    "wttm": _wttm_space,
    "fitnet": _fitnet_space,
    "fsp": _no_space,  # stage 1 trains on the flow matrices alone: no weight to tune
    "overhaul": _scaled_space,
    "review": _scaled_space,
    "at": _scaled_space,
    "rkd": _scaled_space,
    "pkt": _scaled_space,
    "sp": _scaled_space,
}


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
    from keras_kd.tools.run.runner import build_model

    kt = keras_tuner_module()
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
