"""keras_kd.zoo.recipes: the recipe table and the rules that scale each weight to
the data and the budget (docstrings of keras_kd.zoo.recipes), and every
ready-made method training under XLA + mixed_float16."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses, zoo
from keras_kd.tools.bench import command as bench
from keras_kd.tools.config import validate as config
from keras_kd.zoo import recipes as methods
from tests.helpers.models import RunCounter


@pytest.fixture(scope="module")
def fmnist_student():
    return zoo.fmnist_student()


@pytest.fixture(scope="module")
def digits_student():
    return zoo.cnn((8, 8, 1), 10, widths=(8, 16, 32), pool_after=(2,), name="thin")


def test_recipes_are_a_table_and_every_name_is_known_to_config_and_bench():
    assert isinstance(methods.RECIPES, dict)
    assert methods.METHODS == tuple(methods.RECIPES)
    assert {"kd_ls", "dist", "dkd_ls"} <= set(methods.METHODS)
    assert set(config.method_names()) == set(methods.METHODS)
    assert set(bench.LOGIT_METHODS) == set(methods.LOGIT_METHODS)
    for name, build in methods.RECIPES.items():
        assert build.__doc__, f"recipe {name} has no rule in its docstring"


def test_stage_maps_reads_the_student_taps(fmnist_student, digits_student):
    assert methods.stage_maps(fmnist_student) == {
        "stage1_relu": (28, 28, 16), "stage2_relu": (14, 14, 32), "stage3_relu": (7, 7, 64)}
    assert methods.stage_maps(digits_student)["stage1_relu"] == (8, 8, 8)
    assert methods.stage_maps(None) is None


@pytest.mark.parametrize("student, beta", [(None, 1000.0), ("fmnist", 1000.0 * 784 / 1024),
                                           ("digits", 1000.0 * 64 / 1024)])
def test_at_beta_scales_with_the_first_map_area(student, beta, fmnist_student, digits_student):
    model = {"fmnist": fmnist_student, "digits": digits_student}.get(student)
    plan = methods.recipe("at", 6, student=model)
    (term,) = plan.terms
    assert isinstance(term, losses.AttentionTransfer)
    assert float(term.weight) == pytest.approx(beta, rel=1e-6)
    assert plan.weights == {"student_loss": 1.0, "at": pytest.approx(beta), "at decay": "linear"}
    assert methods.recipe("at", 6, student=model, decay=None).callbacks == []


def test_overhaul_weight_keeps_the_per_element_strength(fmnist_student):
    # 28·28·16/4 + 14·14·32/2 + 7·7·64 = 9408 elements; reference 24576.
    plan = methods.recipe("overhaul", 6, student=fmnist_student)
    assert plan.weights["overhaul"] == pytest.approx(1e-3 * 24576 / 9408)
    assert methods.recipe("overhaul", 6).weights["overhaul"] == pytest.approx(1e-3)


@pytest.mark.parametrize("epochs, warmup, beta, temperature", [
    (1, 1, 0.5, 1.0), (15, 1, 0.5, 1.0), (100, 1, 0.5, 1.0),
    (170, 10, 0.5 + 0.5 * 7.5, 2.5), (240, 20, 8.0, 4.0), (480, 20, 8.0, 4.0)])
def test_dkd_takes_the_published_setting_of_its_run_length(epochs, warmup, beta, temperature):
    """ImageNet's (β 0.5, T 1, warm-up 1) up to 100 epochs, CIFAR-100's
    (β 8, T 4, warm-up 20) from 240, linear in between."""
    plan = methods.recipe("dkd", epochs)
    (term,) = plan.terms
    assert isinstance(term, losses.DKD) and plan.student_loss_weight == 1.0
    assert term.warmup_epochs == warmup and term.default_schedule.warmup_epochs == warmup
    assert term.beta == pytest.approx(beta) and term.alpha == 1.0
    assert term.temperature == pytest.approx(temperature)
    assert plan.weights["beta"] == pytest.approx(beta)
    assert methods.recipe("dkd", epochs, temperature=3.0).terms[0].temperature == 3.0


@pytest.mark.parametrize("epochs, warmup, beta", [
    (1, 1, 1 + 7 / 240), (6, 1, 1 + 7 * 6 / 240), (24, 2, 1 + 7 * 24 / 240),
    (120, 10, 4.5), (240, 20, 8.0), (480, 40, 8.0)])
def test_dkd_ls_warmup_and_beta_follow_the_run_length(epochs, warmup, beta):
    plan = methods.recipe("dkd_ls", epochs)
    (term,) = plan.terms
    assert isinstance(term, losses.DKD) and plan.student_loss_weight == 1.0
    assert term.warmup_epochs == warmup and term.default_schedule.warmup_epochs == warmup
    assert term.beta == pytest.approx(beta) and term.alpha == 1.0
    assert term.temperature == 4.0 and term.logit_standardization
    assert plan.weights["beta"] == pytest.approx(beta)


def test_kd_uses_independent_unit_weights():
    plan = methods.recipe("kd", 10, temperature=2.0)
    (term,) = plan.terms
    assert float(term.weight) == 1.0 and term.temperature == 2.0
    assert plan.student_loss_weight == 1.0
    assert plan.weights == {"student_loss": 1.0, "kd": 1.0, "temperature": 2.0,
                            "logit_standardization": False}



def test_kd_ls_uses_the_authors_setting():
    """0.1·CE + 9·KD at base T = 2 on standardized logits (Sun et al.'s
    CIFAR-100 command); each part can be overridden."""
    plan = methods.recipe("kd_ls", 10)
    (ls,) = plan.terms
    assert ls.logit_standardization is True and float(ls.weight) == 9.0
    assert ls.temperature == 2.0 and plan.student_loss_weight == 0.1
    assert plan.weights == {"student_loss": 0.1, "kd": 9.0, "temperature": 2.0,
                            "logit_standardization": True}
    plan = methods.recipe("kd_ls", 10, temperature=4.0, weight=1.0, student_loss_weight=1.0)
    assert plan.terms[0].temperature == 4.0 and float(plan.terms[0].weight) == 1.0
    assert plan.student_loss_weight == 1.0


@pytest.mark.parametrize("epochs, base, weight, labels", [
    (1, 1.0, 0.5, 0.5), (100, 1.0, 0.5, 0.5), (170, 2.5, 0.7, 0.3), (240, 4.0, 0.9, 0.1),
    (480, 4.0, 0.9, 0.1)])
def test_mlkd_takes_the_published_setting_of_its_run_length(epochs, base, weight, labels):
    """ImageNet's (T₀ 1, weight 0.5, labels 0.5) up to 100 epochs, CIFAR-100's
    (T₀ 4, weight 0.9, labels 0.1) from 240, linear in between."""
    plan = methods.recipe("mlkd", epochs)
    (term,) = plan.terms
    assert isinstance(term, losses.MLKD) and not term.logit_standardization
    assert term.temperatures == pytest.approx((base, 3.0, 5.0, 2.0, 6.0))
    assert float(term.weight) == pytest.approx(weight)
    assert plan.student_loss_weight == pytest.approx(labels)
    assert not term.weak_strong and term.confidence_percentile is None
    assert plan.weights["temperature"] == pytest.approx(base)
    assert methods.recipe("mlkd", epochs, temperature=3.0).terms[0].temperatures[0] == 3.0
    custom = methods.recipe("mlkd", epochs, temperatures=(4.0,)).terms[0]
    assert custom.temperatures == (4.0,)


@pytest.mark.parametrize("epochs, labels", [(1, 0.5), (100, 0.5), (290, 0.3), (480, 0.1),
                                            (960, 0.1)])
def test_mlkd_ls_scales_the_authors_weight_to_the_run_length(epochs, labels):
    """`--logit-stand --base-temp 2 --kd-weight 9`: T₀ = 2; the weight from 1
    to 9 over their 480 epochs; the labels the ImageNet config's 0.5 (100
    epochs) to the CIFAR-100 config's 0.1 (480 epochs)."""
    plan = methods.recipe("mlkd_ls", epochs)
    (term,) = plan.terms
    assert term.logit_standardization and term.temperatures == (2.0, 3.0, 5.0, 2.0, 6.0)
    assert float(term.weight) == pytest.approx(1.0 + 8.0 * min(1.0, epochs / 480), rel=1e-6)
    assert plan.name == "mlkd_ls" and plan.student_loss_weight == pytest.approx(labels)
    assert float(methods.recipe("mlkd_ls", epochs, weight=9.0).terms[0].weight) == 9.0


def test_wttm_uses_the_authors_readme_setting():
    plan = methods.recipe("wttm", 10)
    (term,) = plan.terms
    assert isinstance(term, losses.WTTM) and term.gamma == 0.2 and float(term.weight) == 4.0
    assert plan.student_loss_weight == 1.0
    assert plan.weights == {"student_loss": 1.0, "wttm": 4.0, "gamma": 0.2}
    assert methods.recipe("wttm", 10, temperature=4.0).terms[0].gamma == 0.25
    assert methods.recipe("wttm", 10, gamma=0.5, weight=1.0).terms[0].gamma == 0.5


@pytest.mark.parametrize("name", ["mlkd", "mlkd_ls", "wttm"])
def test_new_logit_recipes_train_one_step_on_the_digits_pair(name, digits_batch):
    x, y = digits_batch
    teacher, student = zoo.digits_teacher(), zoo.digits_student()
    plan = methods.recipe(name, 20, teacher=teacher, student=student)
    distiller = keras_kd.Distiller(teacher, student, losses=plan.terms,
                                   student_loss_weight=plan.student_loss_weight)
    distiller.compile(optimizer=keras.optimizers.SGD(0.05),
                      loss="sparse_categorical_crossentropy")
    (term,) = plan.terms
    t, s = np.asarray(teacher(x)), np.asarray(student(x))
    expected = np.mean(term.fn(t, s, **term.fn_kwargs))
    before = [np.array(w) for w in student.get_weights()]
    logs = distiller.train_on_batch(x, y, return_dict=True)  # the value before the update
    assert logs[term.name] == pytest.approx(float(expected), rel=1e-4)
    assert np.isfinite(logs["loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, student.get_weights()))


def test_overrides_replace_a_rule_and_unknown_ones_are_refused(fmnist_student):
    plan = methods.recipe("at", 6, student=fmnist_student, weight=5.0, student_loss_weight=0.5)
    assert float(plan.terms[0].weight) == 5.0 and plan.student_loss_weight == 0.5
    plan = methods.recipe("dkd", 6, beta=2.0, temperature=1.0)
    assert plan.terms[0].beta == 2.0 and plan.terms[0].temperature == 1.0
    with pytest.raises(ValueError, match="Recipe 'at' does not take \\['beta'\\]"):
        methods.recipe("at", 6, beta=3.0)
    with pytest.raises(ValueError, match="Unknown method 'kdd'"):
        methods.recipe("kdd", 6)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        methods.recipe("kd", 0)


def test_two_stage_recipes_spend_a_quarter_on_the_feature_term():
    plan = methods.recipe("fitnet", 8, two_stage=True)
    (stages,) = plan.callbacks
    assert [s.epochs for s in stages.stages] == [2, 6]
    assert stages.stages[0].weights == {"hint": 1.0, "kd": 0.0, "student_loss": 0.0}
    assert stages.stages[1].weights == {"hint": 0.0, "kd": 1.0, "student_loss": 1.0}


def test_fsp_initialises_ahead_of_the_run():
    """FSP's flow-matrix stage runs before the run's epochs (the paper's and
    RepDistiller's protocol): `Recipe.epochs` counts both."""
    plan = methods.recipe("fsp", 8)
    (stages,) = plan.callbacks
    assert [s.epochs for s in stages.stages] == [2, 8]
    assert stages.stages[0].weights == {"fsp": 1.0, "student_loss": 0.0}
    assert stages.stages[1].weights == {"fsp": 0.0, "student_loss": 1.0}
    assert plan.epochs == 10 and stages.total_epochs == 10
    assert plan.weights["stage 1 epochs (before the run)"] == 2
    plan = methods.recipe("fsp", 3, init_epochs=2)
    assert [s.epochs for s in plan.callbacks[0].stages] == [2, 3] and plan.epochs == 5
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="init_epochs must be an int >= 1"):
            methods.recipe("fsp", 3, init_epochs=bad)
    import numpy as np

    assert methods.recipe("fsp", 3, init_epochs=np.int64(2)).epochs == 5
    # An unknown decay is refused when the recipe is built, with or without a sample.
    with pytest.raises(ValueError, match="decay must be one of"):
        methods.recipe("at", 3, decay="Linear")
    # Every other recipe runs exactly the epochs it is given.
    for name in methods.METHODS:
        if name != "fsp":
            assert methods.recipe(name, 7).epochs == 7, name


def _run_fmnist_config(tmp_path, method, epochs, **kwargs):
    """`keras-kd distill` of the Fashion-MNIST zoo pair with `method:`, on 16
    random images, one step per epoch."""
    import keras
    import numpy as np

    from keras_kd.tools.config import validate as config_lib
    from keras_kd.tools.run import runner as run_config

    cfg = config_lib.validate({
        "teacher": "fmnist_teacher", "student": "fmnist_student", "method": method,
        "dataset": {"name": "fashion_mnist", "batch_size": 8, "shuffle_buffer": 0},
        "epochs": epochs, "output_dir": str(tmp_path)}, check_files=False)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=16).astype("int32")
    keras.utils.set_random_seed(0)
    return run_config.run(cfg, train_data=(x, y), test_data=(x[:8], y[:8]), steps_per_epoch=1,
                          export=False, backup=False, verbose=0, **kwargs)


def test_a_run_config_with_method_fsp_runs_the_init_stage_ahead(tmp_path):
    """`keras-kd distill` with `method: fsp` fits init + epochs, and its
    learning-rate schedule spans them all."""
    results = _run_fmnist_config(tmp_path, "fsp", 4)
    assert results["epochs"] == 4 and results["fit_epochs"] == 5
    assert len(results["history"]["loss"]) == 5
    assert results["history"]["fsp_weight"] == [1.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("method, name, key, override", [
    ("at", "attention", "at", "weight"), ("overhaul", "overhaul", "overhaul", "weight"),
    ("fitnet", "hint", "hint", "hint_weight")])
def test_feature_weights_are_balanced_by_gradient_on_a_training_sample(method, name, key,
                                                                       override):
    """With `sample=`, `at` and `overhaul` set their weight when fit starts so
    the weighted term's gradient on the student equals the labels'."""
    import keras
    import numpy as np

    from keras_kd.balance import BalanceWeights, gradient_norms
    from keras_kd.distiller import Distiller

    keras.utils.set_random_seed(0)
    teacher, student = zoo.fmnist_teacher(), zoo.fmnist_student()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=64)
    for given in ({}, {"gradient_ratio": 0.5}):
        plan = methods.recipe(method, 6, teacher=teacher, student=student, sample=(x, y),
                              **given)
        (callback,) = plan.callbacks
        assert isinstance(callback, BalanceWeights)
        assert plan.weights[key] == "balanced when fit starts"
        ratio = plan.weights[f"{key} gradient ratio"]
        assert ratio == given.get("gradient_ratio", ratio) and ratio > 0
        distiller = Distiller(teacher, student, losses=plan.terms)
        distiller.compile(optimizer=keras.optimizers.SGD(0.0),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        distiller.fit(x, y, batch_size=64, epochs=1, verbose=0, callbacks=plan.callbacks)
        (term,) = plan.terms
        assert plan.weights[key] == pytest.approx(term.weight)
        norms = gradient_norms(distiller, x, y)  # SGD(0): the weights did not move
        assert term.weight * norms[name] == pytest.approx(ratio * norms["student_loss"],
                                                          rel=1e-3)
    # A ratio that is not a finite number > 0 is refused when the recipe is built.
    for bad in (0.0, -1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="gradient ratio .* must be a finite number"):
            methods.recipe(method, 6, teacher=teacher, student=student, sample=(x, y),
                           gradient_ratio=bad)
    # A numpy scalar is a ratio like any other.
    import numpy as np

    plan = methods.recipe(method, 6, teacher=teacher, student=student, sample=(x, y),
                          gradient_ratio=np.float32(0.5))
    assert type(plan.weights[f"{key} gradient ratio"]) is float
    assert plan.weights[f"{key} gradient ratio"] == 0.5
    assert plan.callbacks[0].terms == {name: 0.5}
    # So is a ratio with nothing to balance: an explicit weight, or no sample.
    with pytest.raises(ValueError, match="its weight was given explicitly"):
        methods.recipe(method, 6, teacher=teacher, student=student, sample=(x, y),
                       gradient_ratio=0.5, **{override: 2.0})
    with pytest.raises(ValueError, match=r"no training batch was given \(sample="):
        methods.recipe(method, 6, teacher=teacher, student=student, gradient_ratio=0.5)
    # An explicit weight is kept as given: no balancing.
    plan = methods.recipe(method, 6, teacher=teacher, student=student, sample=(x, y),
                          **{override: 2.0}, decay=None)
    assert plan.callbacks == [] and plan.weights[key] == 2.0


@pytest.mark.parametrize("method, name, key, override", [
    ("at", "attention", "at", "weight"), ("fitnet", "hint", "hint", "hint_weight")])
def test_feature_weight_decay_follows_the_run(method, name, key, override):
    """`decay="linear"`: the balanced (or given) weight × (1 − e/E) at epoch e."""
    import keras
    import numpy as np

    from keras_kd.distiller import Distiller

    keras.utils.set_random_seed(0)
    teacher, student = zoo.fmnist_teacher(), zoo.fmnist_student()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=32)
    for extra in ({}, {override: 2.0}):
        plan = methods.recipe(method, 4, teacher=teacher, student=student, sample=(x, y),
                              decay="linear", **extra)
        assert plan.weights[f"{key} decay"] == "linear"
        distiller = Distiller(teacher, student, losses=plan.terms)
        distiller.compile(optimizer=keras.optimizers.SGD(0.0),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = distiller.fit(x, y, batch_size=32, epochs=4, verbose=0,
                                callbacks=plan.callbacks)
        start = plan.weights[key]
        assert start == (2.0 if extra else pytest.approx(start)) and start > 0
        np.testing.assert_allclose(history.history[f"{name}_weight"],
                                   [start, 0.75 * start, 0.5 * start, 0.25 * start], rtol=1e-6)
    with pytest.raises(ValueError, match="decay must be one of"):
        methods.recipe(method, 4, teacher=teacher, student=student, sample=(x, y),
                       decay="exp")


def test_recipe_refuses_a_sample_that_is_not_a_labelled_batch(fmnist_student):
    import numpy as np

    with pytest.raises(ValueError, match=r"sample must be a labelled training batch \(x, y\)"):
        methods.recipe("at", 6, student=fmnist_student, sample=np.zeros((4, 28, 28, 1)))


def test_a_run_config_with_method_at_balances_on_its_first_training_batch(tmp_path):
    """`keras-kd distill` with `method: at` hands the recipe the first training
    batch, so the weight is balanced, not the area rule's 765.6."""
    import keras

    seen = {}

    class ReadWeight(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            seen["at"] = self.model.distillation_losses[0].weight

    _run_fmnist_config(tmp_path, "at", 1, callbacks=[ReadWeight()])
    assert seen["at"] != pytest.approx(1000.0 * 784 / 1024)
    assert 0 < seen["at"] < 1e4


@pytest.mark.parametrize("method, default", [("dist", 4.0), ("nkd", 1.0), ("kd_ls", 2.0)])
def test_an_explicit_temperature_reaches_dist_and_nkd(method, default):
    """`temperature=` used to set only KD's T: DIST and NKD silently kept
    their own (so `keras-kd tune` searched their temperature without effect)."""
    assert methods.recipe(method, 6).terms[0].temperature == default
    plan = methods.recipe(method, 6, temperature=3.0)
    assert plan.terms[0].temperature == 3.0 and plan.weights["temperature"] == 3.0
    plan = methods.recipe("dist", 6)
    assert (plan.terms[0].beta, plan.terms[0].gamma) == (2.0, 2.0)
    assert methods.recipe("kd", 6).terms[0].temperature == 4.0
    assert methods.recipe("kd", 6, temperature=2.0).terms[0].temperature == 2.0


# ----------------------------------------------------------------------
# Every ready-made method trains under XLA + mixed_float16, running the
# student and the teacher once per step.
@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in methods.METHODS if m != "scratch"])
def test_method_trains_under_xla_and_mixed_float16_in_one_pass(name, digits_batch):
    x, y = digits_batch
    keras.config.set_dtype_policy("mixed_float16")
    teacher = zoo.digits_teacher()
    kind = "width-matched" if name in methods.WIDTH_MATCHED else "thin"
    student = zoo.cnn((8, 8, 1), 10, widths=(32, 64, 128) if kind == "width-matched" else (8, 16, 32),
                      convs_per_stage=1, pool_after=(2,), name="student")
    plan = methods.recipe(name, epochs=2)
    for term in plan.terms:  # stage 1 of a two-stage recipe may zero a term: train all
        term.weight = max(term.weight, 1e-3)
    distiller = keras_kd.Distiller(teacher, student, losses=plan.terms,
                                   student_loss_weight=plan.student_loss_weight)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    # Counted from here: building the views and compiling trace the layers.
    student_runs = RunCounter(student.layers[1])
    teacher_runs = RunCounter(teacher.layers[1])
    history = distiller.fit(x, y, batch_size=16, epochs=1, verbose=0).history  # 2 steps
    assert (student_runs.runs, teacher_runs.runs) == (2.0, 2.0)
    assert all(np.isfinite(v[0]) for v in history.values()), history
    for term in plan.terms:
        assert history[term.metric_name][0] > 0, (term.name, history)
