"""CWD (Shu et al. 2021) against an independent numpy derivation."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd.losses import CWD, cwd_loss, cwd_per_sample


def numpy_cwd_per_sample(teacher, student, temperature):
    """For each sample: T²/C · Σ_c KL(softmax over H·W of t_c/T ‖ s_c/T),
    written from the paper and mmrazor's ChannelWiseDivergence (N, C, H, W
    there; NHWC here), loop by loop in float64."""
    teacher = np.asarray(teacher, np.float64)
    student = np.asarray(student, np.float64)
    n, h, w, c = teacher.shape
    out = np.zeros(n)
    for i in range(n):
        total = 0.0
        for k in range(c):
            t = teacher[i, :, :, k].reshape(-1) / temperature
            s = student[i, :, :, k].reshape(-1) / temperature
            p = np.exp(t - t.max()) / np.exp(t - t.max()).sum()
            log_p = np.log(p)
            log_q = s - s.max() - np.log(np.exp(s - s.max()).sum())
            total += np.sum(p * (log_p - log_q))
        out[i] = total * temperature**2 / c
    return out


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_cwd_matches_numpy_element_by_element(temperature):
    rng = np.random.default_rng(0)
    t = rng.normal(0, 3, (3, 5, 4, 6)).astype("float32")
    s = rng.normal(0, 3, (3, 5, 4, 6)).astype("float32")
    expected = numpy_cwd_per_sample(t, s, temperature)
    got = np.asarray(cwd_per_sample(t, s, temperature))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # the authors' normalisation: the sum over batch and channels / (N·C)
    np.testing.assert_allclose(float(cwd_loss(t, s, temperature)), expected.mean(), rtol=1e-5)


def test_cwd_is_zero_for_equal_maps_and_differs_from_pixel_kd():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    assert float(cwd_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    s = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    # CWD normalises over positions, KD over classes: different values
    assert abs(float(cwd_loss(t, s, 1.0)) - float(keras_kd.losses.kd_loss(t, s, 1.0))) > 1e-3


def test_cwd_gradient_under_xla_and_mixed_float16_inputs():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    t = tf.constant(rng.normal(size=(2, 4, 4, 3)), tf.float16)
    s = tf.Variable(rng.normal(size=(2, 4, 4, 3)).astype("float32"))

    @tf.function(jit_compile=True)
    def grad():
        with tf.GradientTape() as tape:
            value = cwd_loss(t, tf.cast(s, tf.float16), 4.0)
        return value, tape.gradient(value, s)

    value, gradient = grad()
    expected = numpy_cwd_per_sample(t.numpy(), s.numpy().astype("float16"), 4.0).mean()
    assert float(value) == pytest.approx(expected, rel=1e-3)
    assert np.all(np.isfinite(gradient.numpy())) and np.abs(gradient.numpy()).max() > 0


def dense_model(channels, name, classes=4):
    x = keras.Input((8, 8, 3))
    f = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="feat")(x)
    return keras.Model(x, keras.layers.Conv2D(classes, 1, name="logits")(f), name=name)


def test_cwd_in_a_distiller_on_dense_logits_and_on_adapted_features():
    keras.utils.set_random_seed(0)
    teacher, student = dense_model(8, "t"), dense_model(4, "s")
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[CWD(temperature=4, weight=3),
                CWD("feat", "feat", temperature=1, adapter="auto", name="cwd_feat")],
    )
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    views = distiller.teacher_view(x), distiller.student_view(x, training=False)
    total, parts = distiller.compute_distillation_loss(*views, training=False)
    expected = numpy_cwd_per_sample(views[0]["logits"], views[1]["logits"], 4.0).mean()
    assert float(parts["cwd"]) == pytest.approx(expected, rel=1e-5)
    adapted = distiller.distillation_losses[1].adapter(views[1]["feat"])
    expected_feat = numpy_cwd_per_sample(views[0]["feat"], adapted, 1.0).mean()
    assert float(parts["cwd_feat"]) == pytest.approx(expected_feat, rel=1e-5)
    assert float(total) == pytest.approx(3 * expected + expected_feat, rel=1e-5)


def test_cwd_refuses_vector_taps_and_round_trips_its_config():
    x = keras.Input((4,))
    flat = keras.Model(x, keras.layers.Dense(3, name="logits")(x), name="flat")
    flat2 = keras.Model(x, keras.layers.Dense(3, name="logits")(x), name="flat2")
    with pytest.raises(ValueError, match="CWD needs NHWC maps.*use keras_kd.losses.KD"):
        keras_kd.Distiller(flat, flat2, losses=[CWD()])
    term = CWD("a", "b", temperature=2.5, adapter="conv1x1", weight=0.5)
    clone = CWD.from_config(term.get_config())
    assert (clone.teacher_layer, clone.student_layer, clone.temperature, clone.weight) == ("a", "b", 2.5, 0.5)
    assert clone.adapter_kind == "conv1x1"
