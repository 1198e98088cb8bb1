"""DIST against a numpy port of the authors' code (hunto/DIST_KD,
image_classification_sota `lib/models/losses/dist_kd.py`); one sample or one
valid pixel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.graphs import value_and_gradient as _value_and_gradient
from tests.helpers.models import tiny_cnn
from tests.helpers.numpy_logits import numpy_kd_per_sample, numpy_standardize


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _cosine_similarity(a, b, eps=1e-8):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + eps)


def _pearson_correlation(a, b, eps=1e-8):
    return _cosine_similarity(a - a.mean(1)[:, None], b - b.mean(1)[:, None], eps)


def _inter_class_relation(y_s, y_t):
    return 1 - _pearson_correlation(y_s, y_t).mean()


def _intra_class_relation(y_s, y_t):
    return _inter_class_relation(y_s.T, y_t.T)


def numpy_dist(z_s, z_t, beta=1.0, gamma=1.0, tau=1.0):
    """DIST.forward(z_s, z_t), float64. Dense (n, H, W, C) logits are
    flattened to pixels, as the segmentation code does."""
    z_s = np.asarray(z_s, np.float64).reshape(-1, np.shape(z_s)[-1])
    z_t = np.asarray(z_t, np.float64).reshape(-1, np.shape(z_t)[-1])
    y_s = _softmax(z_s / tau)
    y_t = _softmax(z_t / tau)
    inter_loss = tau**2 * _inter_class_relation(y_s, y_t)
    intra_loss = tau**2 * _intra_class_relation(y_s, y_t)
    return float(beta * inter_loss + gamma * intra_loss)


def _data(seed, n=16, c=10, scale=3.0):
    rng = np.random.default_rng(seed)
    t = rng.normal(scale=scale, size=(n, c)).astype("float32")
    s = (0.5 * t + rng.normal(scale=scale, size=(n, c))).astype("float32")
    return t, s


@pytest.mark.parametrize("beta,gamma,tau", [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0), (1.0, 0.0, 2.0), (0.0, 1.0, 1.0)])
def test_dist_matches_authors_code(beta, gamma, tau):
    t, s = _data(0)
    got = float(losses.dist_loss(t, s, beta, gamma, tau))
    np.testing.assert_allclose(got, numpy_dist(s, t, beta, gamma, tau), rtol=1e-5)


def test_docstring_values_and_doctest():
    import doctest

    from keras_kd.losses import dist

    t = np.array([[3.0, 1.0, 0.2], [0.5, 2.5, 0.0]])
    assert round(numpy_dist(2.0 * t, t), 4) == 0.0014
    assert round(numpy_dist(-t, t), 4) == 3.8884
    result = doctest.testmod(dist)
    assert result.attempted >= 2 and result.failed == 0


def test_dense_logits_flatten_valid_pixels():
    rng = np.random.default_rng(1)
    t = rng.normal(scale=3.0, size=(2, 3, 4, 5)).astype("float32")
    s = rng.normal(scale=3.0, size=(2, 3, 4, 5)).astype("float32")
    y = rng.integers(0, 5, size=(2, 3, 4)).astype("int32")
    y[0, 0] = -1
    y[1, 2, :2] = 255
    valid = (y >= 0) & (y != 255)
    expected = numpy_dist(s[valid], t[valid], 1.0, 2.0, 2.0)
    mask = valid.astype("float32")
    np.testing.assert_allclose(float(losses.dist_loss(t, s, 1.0, 2.0, 2.0, mask=mask)), expected, rtol=1e-5)
    term = losses.DIST(beta=1.0, gamma=2.0, temperature=2.0, ignore_index=255)
    term.build({"logits": (None, 3, 4, 5)}, {"logits": (None, 3, 4, 5)})
    got = term({"logits": t}, {"logits": s}, labels=y)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # Without labels every pixel counts.
    np.testing.assert_allclose(
        float(term({"logits": t}, {"logits": s})), numpy_dist(s, t, 1.0, 2.0, 2.0), rtol=1e-5)
    xla = tf.function(lambda a, b, m: losses.dist_loss(a, b, 1.0, 2.0, 2.0, mask=m), jit_compile=True)
    np.testing.assert_allclose(float(xla(t, s, mask)), expected, rtol=1e-5)


def test_gradient_reaches_the_student_only_and_is_finite_for_uniform_outputs():
    t, s = _data(2, n=4, c=5)
    s[0] = 0.0  # a zero-initialised head: softmax exactly uniform
    t, s = tf.constant(t), tf.constant(s)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([t, s])
        value = losses.dist_loss(t, s, 1.0, 1.0, 4.0)
    assert tape.gradient(value, t) is None
    grad = tape.gradient(value, s).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    np.testing.assert_allclose(float(value), numpy_dist(s.numpy(), t.numpy(), 1.0, 1.0, 4.0), rtol=1e-5)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="beta"):
        losses.DIST(beta=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        losses.dist_loss(np.zeros((2, 3)), np.zeros((2, 3)), temperature=0.0)
    with pytest.raises(ValueError, match="same number of classes"):
        losses.dist_loss(np.zeros((2, 3)), np.zeros((2, 4)))


def test_config_round_trip():
    term = losses.DIST(beta=2.0, gamma=0.5, temperature=4.0, weight=2.0, ignore_index=255, name="d")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
    assert isinstance(restored, losses.DIST)
    assert (restored.beta, restored.gamma, restored.temperature) == (2.0, 0.5, 4.0)
    assert (restored.ignore_index, restored.name) == (255, "d")
    assert restored.weight == pytest.approx(2.0)


def test_distiller_ignores_sample_weight_and_matches_numpy(digits_batch):
    x, y = digits_batch
    x, y = x[:16], y[:16]
    teacher = tiny_cnn(8, name="teacher")
    student = tiny_cnn(4, name="student")
    distiller = keras_kd.Distiller(
        teacher, student, losses=[losses.DIST(temperature=4.0)], student_loss_weight=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    t = np.asarray(teacher.predict(x, verbose=0))
    s = np.asarray(student.predict(x, verbose=0))
    parts = distiller.compute_distillation_loss({"logits": t}, {"logits": s}, y)[1]
    expected = numpy_dist(s, t, 1.0, 1.0, 4.0)
    np.testing.assert_allclose(float(parts["dist"]), expected, rtol=1e-4)
    weights = np.linspace(0.0, 2.0, 16).astype("float32")
    weighted = distiller.compute_distillation_loss(
        {"logits": t}, {"logits": s}, y, sample_weight=weights)[1]
    assert float(weighted["dist"]) == pytest.approx(float(parts["dist"]), rel=1e-6)
    history = distiller.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert history["dist"][0] > 0


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dist_and_standardized_kd_train_under_mixed_float16(digits_batch, jit_compile):
    keras.config.set_dtype_policy("mixed_float16")
    x, y = digits_batch
    x, y = x[:16], y[:16]
    teacher = tiny_cnn(8, name="teacher")
    student = tiny_cnn(4, name="student")
    terms = [losses.DIST(temperature=4.0), losses.KD(temperature=2.0, logit_standardization=True)]
    distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=1.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                      jit_compile=jit_compile)
    t = keras.ops.convert_to_numpy(teacher.predict(x[:8], verbose=0)).astype(np.float32)
    s = keras.ops.convert_to_numpy(student(x[:8], training=True)).astype(np.float32)
    logs = distiller.train_on_batch(x[:8], y[:8], return_dict=True)
    np.testing.assert_allclose(logs["dist"], numpy_dist(s, t, 1.0, 1.0, 4.0), rtol=2e-2)
    expected_kd = numpy_kd_per_sample(numpy_standardize(t), numpy_standardize(s), 2.0).mean()
    np.testing.assert_allclose(logs["kd"], expected_kd, rtol=2e-2)


# One sample (no intra-class relation to compare) and one or no valid pixel.
@pytest.mark.parametrize("jit_compile", [False, True])
def test_dist_one_sample_drops_only_the_intra_class_term(jit_compile):
    rng = np.random.default_rng(1)
    teacher = rng.normal(scale=3.0, size=(1, 6)).astype("float32")
    student = rng.normal(scale=3.0, size=(1, 6)).astype("float32")
    intra_only = lambda t, s: losses.dist_loss(t, s, beta=0.0, gamma=1.0, temperature=4.0)  # noqa: E731
    value, grad = _value_and_gradient(intra_only, teacher, student, jit_compile)
    assert value == 0.0 and np.all(grad == 0.0)
    both = lambda t, s: losses.dist_loss(t, s, beta=1.0, gamma=1.0, temperature=4.0)  # noqa: E731
    value, grad = _value_and_gradient(both, teacher, student, jit_compile)
    inter_only = numpy_dist(student, teacher, beta=1.0, gamma=0.0, tau=4.0)
    np.testing.assert_allclose(value, inter_only, rtol=1e-5)
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_dist_one_valid_pixel_and_no_valid_pixel():
    rng = np.random.default_rng(2)
    t = rng.normal(scale=3.0, size=(2, 2, 2, 4)).astype("float32")
    s = rng.normal(scale=3.0, size=(2, 2, 2, 4)).astype("float32")
    one = np.zeros((2, 2, 2), "float32")
    one[1, 0, 1] = 1.0
    np.testing.assert_allclose(
        float(losses.dist_loss(t, s, mask=one)),
        numpy_dist(s[1:, 0, 1], t[1:, 0, 1], 1.0, 0.0), rtol=1e-5)
    assert float(losses.dist_loss(t, s, mask=np.zeros((2, 2, 2)))) == 0.0
