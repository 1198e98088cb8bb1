"""Knowledge review (HCL + ABF) checked against numpy, and the ReviewKD term
in a Distiller."""

import math

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import review
from tests.helpers.doctests import assert_doctests
from tests.helpers.feature_nets import (
    assert_config_round_trip,
    feature_net,
    fit_two_steps,
    randomize_bn_layer,
    weights_of,
)
from tests.helpers.numpy_reference import numpy_adaptive_pool, numpy_per_sample


def numpy_hcl(teacher_list, student_list):
    """The official hcl: cnt = tot = 1; for l in (4, 2, 1), l < h: cnt /= 2."""
    loss_all = 0.0
    for ft, fs in zip(teacher_list, student_list):
        ft = np.asarray(ft, np.float64)
        fs = np.asarray(fs, np.float64)
        h = fs.shape[1]
        loss = ((fs - ft) ** 2).mean()
        cnt, tot = 1.0, 1.0
        for level in [4, 2, 1]:
            if level >= h:
                continue
            cnt /= 2.0
            pooled_s = numpy_adaptive_pool(fs, level, level)
            pooled_t = numpy_adaptive_pool(ft, level, level)
            loss += ((pooled_s - pooled_t) ** 2).mean() * cnt
            tot += cnt
        loss_all += loss / tot
    return loss_all


def numpy_bn(x, weights, eps=1e-5):
    gamma, beta, mean, var = weights
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def numpy_conv3x3_same(x, kernel):
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, kernel.shape[-1]))
    for i in range(h):
        for j in range(w):
            patch = padded[:, i:i + 3, j:j + 3, :]
            out[:, i, j, :] = np.einsum("bijc,ijcd->bd", patch, kernel)
    return out


def numpy_nearest(y, h, w):
    """torch F.interpolate(mode="nearest"): source = floor(dst · in / out)."""
    rows = [min(int(math.floor(i * y.shape[1] / h)), y.shape[1] - 1) for i in range(h)]
    cols = [min(int(math.floor(j * y.shape[2] / w)), y.shape[2] - 1) for j in range(w)]
    return y[:, rows][:, :, cols]


def numpy_abf(abf, x, y=None):
    x = np.asarray(x, np.float64)
    (k1,) = weights_of(abf.conv1)
    x = numpy_bn(np.einsum("bhwc,cd->bhwd", x, k1[0, 0]), weights_of(abf.bn1))
    if abf.fuse:
        y = numpy_nearest(np.asarray(y, np.float64), x.shape[1], x.shape[2])
        ka, ba = weights_of(abf.att_conv)
        z = np.einsum("bhwc,cd->bhwd", np.concatenate([x, y], -1), ka[0, 0]) + ba
        z = 1.0 / (1.0 + np.exp(-z))
        x = x * z[..., 0:1] + y * z[..., 1:2]
    if abf.out_size is not None:
        x = numpy_nearest(x, *abf.out_size)
    (k2,) = weights_of(abf.conv2)
    return numpy_bn(numpy_conv3x3_same(x, k2), weights_of(abf.bn2)), x


def _rand(rng, *shape):
    return rng.normal(size=shape).astype("float32")


@pytest.mark.parametrize("h", [1, 2, 3, 4, 5, 8])
def test_hcl_matches_numpy(h):
    rng = np.random.default_rng(h)
    t = [_rand(rng, 2, h, h, 3), _rand(rng, 2, 4, 4, 2)]
    s = [_rand(rng, 2, h, h, 3), _rand(rng, 2, 4, 4, 2)]
    per_sample = np.asarray(losses.hcl_loss(t, s))
    np.testing.assert_allclose(per_sample, numpy_per_sample(numpy_hcl, t, s), rtol=1e-5)
    # The official hcl is their batch mean.
    np.testing.assert_allclose(per_sample.mean(), numpy_hcl(t, s), rtol=1e-5)


def test_hcl_float16_and_errors():
    rng = np.random.default_rng(0)
    t, s = _rand(rng, 2, 4, 4, 3), _rand(rng, 2, 4, 4, 3)
    value = losses.hcl_loss([t.astype("float16")], [s.astype("float16")])
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    with pytest.raises(ValueError, match="equal shape"):
        losses.hcl_loss([t], [_rand(rng, 2, 4, 4, 2)])
    with pytest.raises(ValueError, match="one to one"):
        losses.hcl_loss([t, t], [s])


def test_docstring_examples():
    assert_doctests(review, {"ABF": 4, "hcl_loss": 4})


@pytest.mark.parametrize("fuse,y_size", [(False, None), (True, 2), (True, 5), (True, 3)])
def test_abf_matches_numpy(fuse, y_size):
    rng = np.random.default_rng(1)
    x = _rand(rng, 2, 5, 5, 3)
    y = _rand(rng, 2, y_size, y_size, 4) if fuse else None
    abf = losses.ABF(mid_channels=4, out_channels=6, fuse=fuse)
    abf.build(x.shape, None if y is None else y.shape)
    for bn in (abf.bn1, abf.bn2):
        randomize_bn_layer(bn, rng)
    out, residual = abf(x, y, training=False) if fuse else abf(x, training=False)
    expected_out, expected_residual = numpy_abf(abf, x, y)
    assert tuple(out.shape) == (2, 5, 5, 6) and tuple(residual.shape) == (2, 5, 5, 4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(residual), expected_residual, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected_out, rtol=1e-5, atol=1e-6)


def test_abf_resizes_to_out_size_like_mdistiller():
    rng = np.random.default_rng(5)
    x, y = _rand(rng, 2, 4, 4, 3), _rand(rng, 2, 2, 2, 4)
    abf = losses.ABF(mid_channels=4, out_channels=6, fuse=True, out_size=(8, 8))
    out, residual = abf(x, y, training=False)
    assert tuple(out.shape) == (2, 8, 8, 6) and tuple(residual.shape) == (2, 8, 8, 4)
    expected_out, expected_residual = numpy_abf(abf, x, y)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(residual), expected_residual, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected_out, rtol=1e-5, atol=1e-6)


def test_abf_config_and_missing_residual():
    abf = losses.ABF(8, 16, True, name="abf_x")
    clone = losses.ABF.from_config(abf.get_config())
    assert (clone.mid_channels, clone.out_channels, clone.fuse) == (8, 16, True)
    sized = losses.ABF.from_config(losses.ABF(8, 16, False, out_size=4).get_config())
    assert sized.out_size == (4, 4)
    assert clone.name == "abf_x"
    with pytest.raises(ValueError, match="residual"):
        abf.build((None, 4, 4, 3), (None, 2, 2, 8))
        abf(np.ones((1, 4, 4, 3), "float32"))


@pytest.mark.parametrize("student_sizes", [(8, 4, 2), (4, 4, 1)])
def test_review_term_matches_numpy(student_sizes):
    rng = np.random.default_rng(2)
    teacher = {"t1": _rand(rng, 2, 8, 8, 6), "t2": _rand(rng, 2, 4, 4, 8),
               "t3": _rand(rng, 2, 2, 2, 8)}
    h1, h2, h3 = student_sizes  # other sizes than the teacher's: resized
    student = {"s1": _rand(rng, 2, h1, h1, 3), "s2": _rand(rng, 2, h2, h2, 4),
               "s3": _rand(rng, 2, h3, h3, 5)}
    term = losses.ReviewKD(["t1", "t2", "t3"], ["s1", "s2", "s3"])
    term.build({k: (None,) + v.shape[1:] for k, v in teacher.items()},
               {k: (None,) + v.shape[1:] for k, v in student.items()})
    assert [a.fuse for a in term.abfs] == [True, True, False]
    assert all(a.mid_channels == 5 for a in term.abfs)  # min(512, 5)
    assert [a.out_channels for a in term.abfs] == [6, 8, 8]
    assert [a.out_size for a in term.abfs] == [
        None if h == t else (t, t) for h, t in zip(student_sizes, (8, 4, 2))]
    for abf in term.abfs:
        randomize_bn_layer(abf.bn1, rng)
        randomize_bn_layer(abf.bn2, rng)
    got = keras.ops.convert_to_numpy(term(teacher, student, training=False))
    assert got.shape == (2,)
    out3, res = numpy_abf(term.abfs[2], student["s3"])
    out2, res = numpy_abf(term.abfs[1], student["s2"], res)
    out1, _ = numpy_abf(term.abfs[0], student["s1"], res)
    expected = numpy_per_sample(numpy_hcl, [teacher["t1"], teacher["t2"], teacher["t3"]],
                                [out1, out2, out3])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("mode", ["graph", "jit_mixed"])
def test_review_trains_in_distiller(mode):
    if mode == "jit_mixed":
        keras.config.set_dtype_policy("mixed_float16")  # restored by conftest
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), name="student")
    term = losses.ReviewKD(["relu1", "relu2"], ["relu1", "relu2"], mid_channels=4)
    before = []
    fit_two_steps(term, teacher, student, jit_compile=(mode == "jit_mixed"),
                  before_fit=lambda d: before.extend(
                      weights_of(a.conv1)[0] for a in term.abfs))
    after = [weights_of(a.conv1)[0] for a in term.abfs]
    assert all(not np.allclose(b, a) for b, a in zip(before, after))


def test_config_round_trip():
    clone = assert_config_round_trip(
        losses.ReviewKD(["a", "b"], ["c", "d"], mid_channels=32, weight=2.0))
    assert clone.mid_channels == 32 and clone.weight == 2.0
    assert clone.teacher_taps == ("a", "b") and clone.student_taps == ("c", "d")
    assert assert_config_round_trip(losses.ReviewKD("a", "c")).mid_channels is None


def test_bad_shapes_raise_clear_errors():
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), strides=(2, 1), name="student")
    with pytest.raises(ValueError, match="NHWC"):
        keras_kd.Distiller(teacher, student, [losses.ReviewKD(["gap"], ["gap"])])
    with pytest.raises(ValueError, match="one to one"):
        losses.ReviewKD(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="mid_channels"):
        losses.ReviewKD("a", "b", mid_channels=0)


def test_distiller_save_and_load_keeps_the_adapters(tmp_path):
    teacher = feature_net(widths=(6, 8), name="teacher")
    student = feature_net(widths=(3, 4), name="student")
    terms = [losses.ReviewKD(["relu1", "relu2"], ["relu1", "relu2"]),
             losses.FitNet("relu1", "relu1"),
             losses.AttentionTransfer("relu2", "relu1")]
    distiller = keras_kd.Distiller(teacher, student, losses=terms)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    for term, again in zip(distiller.distillation_losses, loaded.distillation_losses):
        assert type(again) is type(term) and again.get_config() == term.get_config()
        saved, restored = term.get_weights(), again.get_weights()
        assert len(saved) == len(restored)
        for a, b in zip(saved, restored):
            np.testing.assert_array_equal(a, b)
