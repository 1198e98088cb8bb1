"""KD, DKD and NKD on dense logits (batch, H, W, classes), with masks of
ignored pixels, against an independent per-pixel numpy derivation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_kd import losses
from tests.helpers.numpy_logits import numpy_dkd, numpy_kd, numpy_nkd


def _dense_data(seed, batch=3, h=4, w=5, c=6, ignore=-1, ignored_fraction=0.3):
    rng = np.random.default_rng(seed)
    t = rng.normal(scale=3.0, size=(batch, h, w, c)).astype("float32")
    s = rng.normal(scale=3.0, size=(batch, h, w, c)).astype("float32")
    y = rng.integers(0, c, size=(batch, h, w)).astype("int32")
    y[rng.random(size=y.shape) < ignored_fraction] = ignore
    y[-1] = ignore  # the last sample has no valid pixel at all
    return t, s, y


def _per_sample(pixel_value, t, s, y, valid):
    """Mean over the valid pixels of each sample (0 if none), in float64."""
    out = []
    for b in range(t.shape[0]):
        values = [
            pixel_value(t[b, i, j][None], s[b, i, j][None], y[b, i, j])
            for i in range(t.shape[1])
            for j in range(t.shape[2])
            if valid[b, i, j]
        ]
        out.append(np.mean(values) if values else 0.0)
    return np.array(out)


def _numpy_values(method, t, s, y, valid):
    if method == "kd":
        fn = lambda tt, ss, yy: numpy_kd(tt, ss, 4.0)  # noqa: E731
    elif method == "dkd":
        fn = lambda tt, ss, yy: numpy_dkd(tt, ss, np.array([yy]), 1.0, 8.0, 4.0)  # noqa: E731
    else:
        fn = lambda tt, ss, yy: numpy_nkd(tt, ss, np.array([yy]), 2.0, 1.5)  # noqa: E731
    return _per_sample(fn, t, s, y, valid)


def _built(term):
    shapes = {"logits": (None, 4, 5, 6)}
    term.build(shapes, shapes)
    return term


TERMS = {
    "kd": lambda **kw: _built(losses.KD(temperature=4.0, **kw)),
    "dkd": lambda **kw: _built(
        losses.DKD(alpha=1.0, beta=8.0, temperature=4.0, warmup_epochs=0, **kw)),
    "nkd": lambda **kw: _built(losses.NKD(temperature=2.0, gamma=1.5, **kw)),
}


@pytest.mark.parametrize("method", ["kd", "dkd", "nkd"])
@pytest.mark.parametrize("ignore", [-1, 255])
def test_term_averages_valid_pixels_like_numpy(method, ignore):
    t, s, y = _dense_data(0, ignore=ignore)
    valid = (y != ignore) & (y >= 0)
    assert valid[:-1].any() and not valid.all()
    term = TERMS[method](ignore_index=ignore)
    got = np.asarray(term({"logits": t}, {"logits": s}, labels=y))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, _numpy_values(method, t, s, y, valid), rtol=1e-5, atol=1e-7)
    assert got[-1] == 0.0  # no valid pixel: contributes nothing


@pytest.mark.parametrize("method", ["kd", "dkd", "nkd"])
def test_trailing_label_axis_and_other_negative_labels(method):
    t, s, y = _dense_data(1, ignore=255)
    y[0, 0, :2] = -1  # negative labels are ignored whatever ignore_index is
    valid = (y != 255) & (y >= 0)
    term = TERMS[method](ignore_index=255)
    got = np.asarray(term({"logits": t}, {"logits": s}, labels=y[..., None]))
    np.testing.assert_allclose(got, _numpy_values(method, t, s, y, valid), rtol=1e-5, atol=1e-7)


def test_functions_take_the_mask_and_return_each_samples_mean_over_its_pixels():
    t, s, y = _dense_data(2, ignore=-1)
    valid = y >= 0
    mask = valid.astype("float32")
    np.testing.assert_allclose(
        np.asarray(losses.kd_loss(t, s, 4.0, mask=mask)),
        _numpy_values("kd", t, s, y, valid), rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(losses.dkd_loss(t, s, y, 1.0, 8.0, 4.0, mask=mask)),
        _numpy_values("dkd", t, s, y, valid), rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(losses.nkd_loss(t, s, y, 2.0, 1.5, mask=mask)),
        _numpy_values("nkd", t, s, y, valid), rtol=1e-5)
    # Without a mask KD averages every pixel.
    everything = np.ones_like(valid)
    np.testing.assert_allclose(
        np.asarray(losses.kd_loss(t, s, 4.0)),
        _numpy_values("kd", t, s, y, everything), rtol=1e-5)


def test_kd_reads_labels_only_for_the_mask():
    t, s, y = _dense_data(3, ignore=-1)
    term = TERMS["kd"]()
    assert term.requires_labels is False
    no_labels = np.asarray(term({"logits": t}, {"logits": s}))
    np.testing.assert_allclose(
        no_labels, _numpy_values("kd", t, s, y, np.ones(y.shape, bool)), rtol=1e-5)
    # Classification logits: labels never mask anything (semi-supervised -1).
    t2, s2 = t[:, 0, 0], s[:, 0, 0]
    np.testing.assert_allclose(
        np.asarray(term({"logits": t2}, {"logits": s2}, labels=np.array([-1, 0, 1]))),
        np.asarray(losses.kd_loss(t2, s2, 4.0)), rtol=1e-6)


@pytest.mark.parametrize("method", ["dkd", "nkd"])
def test_one_hot_label_maps_with_zero_rows_ignored(method):
    t, s, y = _dense_data(4, ignore=-1)
    one_hot = np.zeros(y.shape + (6,), "float32")
    for index in np.ndindex(y.shape):
        if y[index] >= 0:
            one_hot[index + (y[index],)] = 1.0
    term = TERMS[method]()
    got = np.asarray(term({"logits": t}, {"logits": s}, labels=one_hot))
    np.testing.assert_allclose(got, _numpy_values(method, t, s, y, y >= 0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["kd", "dkd", "nkd"])
def test_dense_terms_compile_with_xla_and_dynamic_batch(method):
    t, s, y = _dense_data(5, ignore=-1)
    term = TERMS[method]()
    expected = _numpy_values(method, t, s, y, y >= 0)

    def step(tt, ss, yy):
        return term({"logits": tt}, {"logits": ss}, labels=yy)

    xla = tf.function(step, jit_compile=True)
    np.testing.assert_allclose(np.asarray(xla(t, s, y)), expected, rtol=1e-5, atol=1e-7)
    spec = [tf.TensorSpec((None, 4, 5, 6)), tf.TensorSpec((None, 4, 5, 6)),
            tf.TensorSpec((None, 4, 5), tf.int32)]
    dynamic = tf.function(step, input_signature=spec)
    np.testing.assert_allclose(np.asarray(dynamic(t, s, y)), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["kd", "dkd", "nkd"])
def test_ignored_pixels_get_no_gradient(method):
    t, s, y = _dense_data(6, ignore=-1, ignored_fraction=0.5)
    term = TERMS[method]()
    s = tf.constant(s)
    with tf.GradientTape() as tape:
        tape.watch(s)
        value = tf.reduce_sum(term({"logits": t}, {"logits": s}, labels=y))
    grad = tape.gradient(value, s).numpy()
    assert np.all(np.isfinite(grad))
    assert np.all(grad[y < 0] == 0.0)
    assert np.all(np.abs(grad[y >= 0]).sum(axis=-1) > 0)


def test_dense_errors_name_the_shapes():
    t, s, y = _dense_data(7)
    with pytest.raises(ValueError, match=r"Labels must be class indices of shape \(batch, 4, 5\)"):
        TERMS["dkd"]()({"logits": t}, {"logits": s}, labels=y[:, :, :3])
    with pytest.raises(ValueError, match="mask must have the shape"):
        losses.kd_loss(t, s, mask=np.ones((3, 4)))
    with pytest.raises(ValueError, match="same rank"):
        losses.kd_loss(t, s[:, 0, 0])
    with pytest.raises(TypeError, match="ignore_index"):
        losses.NKD(ignore_index=0.5)


def test_ignore_index_round_trips_in_config():
    import keras

    for term in (losses.KD(ignore_index=255), losses.DKD(ignore_index=255), losses.NKD(ignore_index=255)):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
        assert restored.ignore_index == 255


def test_distiller_passes_dense_label_maps_to_the_terms_unclamped():
    # The Distiller's semi-supervised masking (label -1 = unlabeled sample)
    # must not clamp a label map's ignored pixels to class 0.
    import keras

    import keras_kd

    def net(name):
        inputs = keras.Input((4, 5, 1))
        return keras.Model(inputs, keras.layers.Conv2D(6, 1, name="head")(inputs), name=name)

    teacher, student = net("teacher"), net("student")
    terms = [losses.KD(), losses.DKD(warmup_epochs=0), losses.NKD(temperature=2.0), losses.DIST()]
    distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=0.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0))
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 4, 5, 1)).astype("float32")
    y = rng.integers(0, 6, size=(3, 4, 5)).astype("int32")
    y[:, 0] = -1  # the first row of pixels of every sample is ignored
    t = np.asarray(teacher.predict(x, verbose=0))
    s = np.asarray(student.predict(x, verbose=0))
    parts = distiller.compute_distillation_loss({"logits": t}, {"logits": s}, y)[1]
    valid = y >= 0
    for name in ("kd", "dkd", "nkd"):
        expected = _numpy_values(name, t, s, y, valid).mean()
        np.testing.assert_allclose(float(parts[name]), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        float(parts["dist"]), float(losses.dist_loss(t, s, mask=valid.astype("float32"))), rtol=1e-5)
