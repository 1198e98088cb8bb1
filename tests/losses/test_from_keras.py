"""keras_kd.losses.from_keras: keras.distillation objects as keras-kd terms."""

import warnings

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd.losses import KD, FeatureMSE, OnOutput, from_keras


def numpy_kd(t, s, temperature):
    t = np.asarray(t, np.float64) / temperature
    s = np.asarray(s, np.float64) / temperature
    lp = t - np.log(np.exp(t).sum(-1, keepdims=True))
    lq = s - np.log(np.exp(s).sum(-1, keepdims=True))
    return float(((np.exp(lp) * (lp - lq)).sum(-1) * temperature**2).mean())


LOGITS_T = np.array([[3.0, 1.0, -2.0], [0.5, 0.2, 0.1]], "float32")
LOGITS_S = np.array([[1.0, 1.0, 1.0], [2.0, -1.0, 0.0]], "float32")


def keras_value(loss_obj):
    return float(loss_obj.compute_loss(LOGITS_T, LOGITS_S))


def our_value(term):
    term.build({"logits": (None, 3)}, {"logits": (None, 3)})
    return float(keras.ops.mean(term({"logits": LOGITS_T}, {"logits": LOGITS_S})))


def test_kl_divergence_instance_converts_to_kd_with_equal_values_and_no_warning():
    obj = keras.distillation.LogitsDistillation(temperature=3.0, loss=keras.losses.KLDivergence())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        term = from_keras(obj)
    assert isinstance(term, KD) and term.temperature == 3.0
    assert our_value(term) == pytest.approx(keras_value(obj), rel=1e-5)
    assert our_value(term) == pytest.approx(numpy_kd(LOGITS_T, LOGITS_S, 3.0), rel=1e-5)


@pytest.mark.parametrize("loss", ["kl_divergence", keras.losses.kl_divergence,
                                  "categorical_crossentropy",
                                  keras.losses.CategoricalCrossentropy(from_logits=True)])
def test_default_string_loss_is_replaced_by_a_correct_kd_with_a_warning(loss):
    obj = keras.distillation.LogitsDistillation(temperature=4.0, loss=loss)
    with pytest.warns(UserWarning, match=r"not Hinton's distillation loss.*KD\(temperature=4.0\)"):
        term = from_keras(obj, weight=0.5)
    assert isinstance(term, KD) and term.weight == 0.5
    ours = our_value(term)
    assert ours == pytest.approx(numpy_kd(LOGITS_T, LOGITS_S, 4.0), rel=1e-5)
    # and Keras's own number is indeed something else
    assert abs(keras_value(obj) - ours) > 1e-3


def test_default_logits_distillation_warns():
    with pytest.warns(UserWarning, match="'kl_divergence'.*no softmax"):
        term = from_keras(keras.distillation.LogitsDistillation())
    assert term.temperature == 3.0


def test_mse_logits_become_logit_matching_with_equal_values():
    obj = keras.distillation.LogitsDistillation(temperature=2.0, loss="mse")
    term = from_keras(obj)
    assert isinstance(term, FeatureMSE) and term.weight == pytest.approx(0.25)
    ours = our_value(term) * term.weight
    assert ours == pytest.approx(keras_value(obj), rel=1e-5)


def test_feature_distillation_converts_to_feature_mse_with_equal_values():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    s = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    obj = keras.distillation.FeatureDistillation(
        loss="mse", teacher_layer_name="conv_t", student_layer_name="conv_s"
    )
    term = from_keras(obj)
    assert isinstance(term, FeatureMSE)
    assert (term.teacher_layer, term.student_layer) == ("conv_t", "conv_s")
    term.build({"conv_t": t.shape}, {"conv_s": s.shape})
    ours = float(keras.ops.mean(term({"conv_t": t}, {"conv_s": s})))
    assert ours == pytest.approx(float(obj.compute_loss(t, s)), rel=1e-5)
    final = from_keras(keras.distillation.FeatureDistillation())
    assert final.teacher_taps == ("logits",)


def test_unsupported_forms_say_what_to_use():
    with pytest.raises(ValueError, match="loss='mse' only.*FeatureMSE"):
        from_keras(keras.distillation.FeatureDistillation(loss="cosine_similarity"))
    with pytest.raises(ValueError, match="cannot convert LogitsDistillation.*'mean_absolute_error'"):
        from_keras(keras.distillation.LogitsDistillation(loss="mae"))
    with pytest.raises(TypeError, match="got KD"):
        from_keras(KD())


def test_a_list_of_losses_becomes_one_term_per_named_output():
    obj = keras.distillation.LogitsDistillation(
        temperature=2.0, loss=[keras.losses.KLDivergence(), None]
    )
    with pytest.raises(ValueError, match="output_names"):
        from_keras(obj)
    terms = from_keras(obj, output_names=["classes", "aux"])
    assert len(terms) == 1 and isinstance(terms[0], OnOutput)
    assert terms[0].teacher_taps == ("output:classes",)
    assert terms[0].metric_name == "kd_classes"


def test_migrated_script_trains():
    """The migration snippet of the README ("Your own models"), before and after."""
    keras.utils.set_random_seed(0)

    def mlp(width, name):
        x = keras.Input((8,))
        h = keras.layers.Dense(width, activation="relu", name="hidden")(x)
        return keras.Model(x, keras.layers.Dense(3, name="logits")(h), name=name)

    teacher, student = mlp(16, "teacher"), mlp(8, "student")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = rng.integers(0, 3, 32)
    # before: keras.distillation
    losses = [keras.distillation.LogitsDistillation(temperature=3.0),
              keras.distillation.FeatureDistillation(teacher_layer_name="hidden",
                                                     student_layer_name="hidden")]
    alpha, weights = 0.5, [1.0, 0.1]
    # after: keras-kd, the same objective with a correct KD
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        terms = [keras_kd.losses.from_keras(l, weight=(1 - alpha) * w)
                 for l, w in zip(losses, weights)]
    terms[1] = FeatureMSE("hidden", "hidden", adapter="auto", weight=terms[1].weight)
    distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=alpha)
    distiller.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = distiller.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert history.history["kd"][-1] > 0 and history.history["feature_mse"][-1] > 0
