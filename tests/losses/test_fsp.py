"""FSP matrices and loss checked against numpy, and the FSP term in a Distiller."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import _ops, fsp
from tests.helpers.doctests import assert_doctests
from tests.helpers.feature_nets import assert_config_round_trip, feature_net, fit_two_steps
from tests.helpers.numpy_reference import numpy_adaptive_pool, numpy_pool_to_common_size


def numpy_fsp(f1, f2):
    f1, f2 = numpy_pool_to_common_size(f1, f2)
    n, h, w, c1 = f1.shape
    c2 = f2.shape[3]
    g = np.zeros((n, c1, c2))
    for b in range(n):
        for i in range(c1):
            for j in range(c2):
                g[b, i, j] = (f1[b, :, :, i] * f2[b, :, :, j]).sum() / (h * w)
    return g


def numpy_fsp_loss(teacher_pairs, student_pairs, weights=None):
    weights = weights or [1.0] * len(teacher_pairs)
    total = 0.0
    for (t1, t2), (s1, s2), lam in zip(teacher_pairs, student_pairs, weights):
        total += lam * ((numpy_fsp(s1, s2) - numpy_fsp(t1, t2)) ** 2).mean()
    return total


def _rand(rng, *shape):
    return rng.normal(size=shape).astype("float32")


def test_adaptive_pool_matches_torch_windows():
    rng = np.random.default_rng(0)
    x = _rand(rng, 2, 7, 6, 3)
    for out in [(7, 6), (4, 3), (3, 3), (2, 4), (1, 1), (5, 4)]:
        np.testing.assert_allclose(
            np.asarray(_ops.adaptive_avg_pool2d(x, out)),
            numpy_adaptive_pool(x, *out), rtol=1e-5, atol=1e-6,
        )


@pytest.mark.parametrize(
    "shape1,shape2",
    [((2, 4, 4, 3), (2, 4, 4, 5)),   # same size
     ((2, 8, 8, 3), (2, 4, 4, 2)),   # first is larger: pooled
     ((2, 4, 4, 3), (2, 8, 8, 2)),   # second is larger: pooled
     ((2, 6, 6, 2), (2, 4, 4, 3))],  # not divisible: torch windows
)
def test_fsp_matrix_matches_numpy(shape1, shape2):
    rng = np.random.default_rng(1)
    f1, f2 = _rand(rng, *shape1), _rand(rng, *shape2)
    got = np.asarray(losses.fsp_matrix(f1, f2))
    assert got.shape == (shape1[0], shape1[-1], shape2[-1])
    np.testing.assert_allclose(got, numpy_fsp(f1, f2), rtol=1e-5, atol=1e-7)


def test_fsp_loss_matches_numpy_with_weights():
    rng = np.random.default_rng(2)
    t = [(_rand(rng, 3, 8, 8, 2), _rand(rng, 3, 4, 4, 3)),
         (_rand(rng, 3, 4, 4, 3), _rand(rng, 3, 4, 4, 4))]
    s = [(_rand(rng, 3, 8, 8, 2), _rand(rng, 3, 4, 4, 3)),
         (_rand(rng, 3, 4, 4, 3), _rand(rng, 3, 4, 4, 4))]

    def each_sample(pairs, i):
        return [(a[i:i + 1], b[i:i + 1]) for a, b in pairs]

    for weights in (None, [0.5, 2.0]):
        got = np.asarray(losses.fsp_loss(t, s, weights=weights))
        expected = [numpy_fsp_loss(each_sample(t, i), each_sample(s, i), weights)
                    for i in range(3)]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        # RepDistiller's loss is their batch mean.
        np.testing.assert_allclose(got.mean(), numpy_fsp_loss(t, s, weights), rtol=1e-5)
    value = losses.fsp_loss(
        [(a.astype("float16"), b.astype("float16")) for a, b in t],
        [(a.astype("float16"), b.astype("float16")) for a, b in s],
    )
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_fsp_loss_errors():
    rng = np.random.default_rng(3)
    a, b = _rand(rng, 2, 4, 4, 2), _rand(rng, 2, 4, 4, 3)
    with pytest.raises(ValueError, match="channel counts"):
        losses.fsp_loss([(a, b)], [(a, a)])
    with pytest.raises(ValueError, match="pairs"):
        losses.fsp_loss([(a, b)], [])
    with pytest.raises(ValueError, match="one weight per pair"):
        losses.fsp_loss([(a, b)], [(a, b)], weights=[1.0, 2.0])


def test_docstring_examples():
    assert_doctests(fsp, {"fsp_loss": 4, "fsp_matrix": 4})


def _built_term(**kwargs):
    term = losses.FSP(pairs=[("t1", "t2", "s1", "s2")], **kwargs)
    term.build(
        {"t1": (None, 8, 8, 3), "t2": (None, 4, 4, 5)},
        {"s1": (None, 8, 8, 3), "s2": (None, 4, 4, 5)},
    )
    return term


def test_fsp_term_value_and_shuffle_against_numpy():
    rng = np.random.default_rng(4)
    teacher = {"t1": _rand(rng, 2, 8, 8, 3), "t2": _rand(rng, 2, 4, 4, 5)}
    student = {"s1": _rand(rng, 2, 8, 8, 3), "s2": _rand(rng, 2, 4, 4, 5)}
    g_t = numpy_fsp(teacher["t1"], teacher["t2"])
    g_s = numpy_fsp(student["s1"], student["s2"])

    plain = _built_term()
    per_sample = np.asarray(plain(teacher, student))
    assert per_sample.shape == (2,)
    np.testing.assert_allclose(per_sample, ((g_s - g_t) ** 2).mean(axis=(1, 2)), rtol=1e-5)

    shuffled = _built_term(shuffle_seed=7)
    rs = np.random.RandomState(7)
    p1, p2 = rs.permutation(3), rs.permutation(5)
    np.testing.assert_array_equal(shuffled.permutations["t1"], p1)
    np.testing.assert_array_equal(shuffled.permutations["t2"], p2)
    g_t_perm = g_t[:, p1][:, :, p2]  # G'[i, j] = G[p1[i], p2[j]]
    np.testing.assert_allclose(
        np.asarray(shuffled(teacher, student)),
        ((g_s - g_t_perm) ** 2).mean(axis=(1, 2)), rtol=1e-5,
    )
    (m_t, m_s), = losses.fsp_matrices(shuffled, teacher, student)
    np.testing.assert_allclose(np.asarray(m_t), g_t_perm, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(m_s), g_s, rtol=1e-5, atol=1e-7)
    (m_t, _), = shuffled.matrices(teacher, student, shuffled=False)
    np.testing.assert_allclose(np.asarray(m_t), g_t, rtol=1e-5, atol=1e-7)
    # The same seed gives the same permutation (it is not saved, only the seed).
    again = _built_term(shuffle_seed=7)
    np.testing.assert_array_equal(again.permutations["t2"], p2)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fsp_trains_in_distiller(jit_compile):
    teacher = feature_net(widths=(4, 8), name="teacher")
    student = feature_net(widths=(4, 8), name="student")
    term = losses.FSP(
        pairs=[("conv1", "relu2", "conv1", "relu2"),
               ("relu1", "conv2", "relu1", "conv2")],
        pair_weights=[1.0, 0.5],
        shuffle_seed=3 if jit_compile else None,
    )
    fit_two_steps(term, teacher, student, jit_compile=jit_compile)


def test_fsp_config_round_trip():
    term = losses.FSP(
        pairs=[("a", "b", "c", "d"), ("b", "e", "d", "f")],
        pair_weights=[1.0, 0.25], shuffle_seed=5, weight=50.0, name="fsp2",
    )
    clone = assert_config_round_trip(term)
    assert clone.pairs == [("a", "b", "c", "d"), ("b", "e", "d", "f")]
    assert clone.pair_weights == [1.0, 0.25]
    assert clone.shuffle_seed == 5 and clone.weight == 50.0
    assert clone.teacher_taps == ("a", "b", "e")
    assert clone.student_taps == ("c", "d", "f")
    default = assert_config_round_trip(losses.FSP(pairs=[("a", "b", "c", "d")]))
    assert default.pair_weights == [1.0]


def test_fsp_bad_shapes_raise_clear_errors():
    teacher = feature_net(widths=(4, 8), name="teacher")
    student = feature_net(widths=(3, 8), name="student")
    term = losses.FSP(pairs=[("conv1", "conv2", "conv1", "conv2")])
    with pytest.raises(ValueError, match=r"'conv1'.*\(None, 8, 8, 4\).*'conv1'.*\(None, 8, 8, 3\)"):
        keras_kd.Distiller(teacher, student, [term])
    term = losses.FSP(pairs=[("conv1", "gap", "conv1", "gap")])
    with pytest.raises(ValueError, match="NHWC"):
        keras_kd.Distiller(teacher, student, [term])
    with pytest.raises(ValueError, match="one weight per pair"):
        losses.FSP(pairs=[("a", "b", "c", "d")], pair_weights=[1.0, 2.0])
    with pytest.raises(TypeError, match="student_second"):
        losses.FSP(pairs=[("a", "b", "c")])
