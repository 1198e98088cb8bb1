"""Every registered loss has one functional form beside its class, as Keras
pairs `categorical_crossentropy` with `CategoricalCrossentropy`.

For each term of `keras_kd.losses.registry`: its module exposes exactly one
public (non-deprecated) function for it, `<name>_loss`, exported by
`keras_kd.losses`; the function returns per-sample values `(batch,)` (or a
scalar for the batch-level losses); and the class's value, reduced with a
sample_weight as the Distiller reduces it, equals the reduced function on
random input.
"""

import inspect
import sys

import keras
import numpy as np
import pytest
from keras import ops

from keras_kd import losses
from keras_kd.losses import registry
from keras_kd.losses import feature_mse as features
from keras_kd.losses.base import reduce_per_sample
from keras_kd.losses.overhaul import margin_relu
from keras_kd.losses.topk_kd import topk_summary

RNG = np.random.default_rng(0)
BATCH = 4


def _normal(*shape, scale=2.0):
    return (RNG.normal(size=shape) * scale).astype("float32")


def _built(term, classes):
    term.build({"logits": (None, classes)}, {"logits": (None, classes)})
    return term


def _logit_case(term, function, labels=False):
    t, s = _normal(BATCH, 6), _normal(BATCH, 6)
    _built(term, 6)
    y = np.array([0, 3, 5, 1], "int32")

    def expected():
        return function(t, s, y) if labels else function(t, s)

    return term, {"logits": t}, {"logits": s}, (y if labels else None), expected


def _pair_case(term, function, t_shape, s_shape=None):
    t, s = _normal(BATCH, *t_shape), _normal(BATCH, *(s_shape or t_shape))
    term.build({"a": (None,) + t_shape}, {"b": (None,) + (s_shape or t_shape)})
    return term, {"a": t}, {"b": s}, None, lambda: function(t, s)


def _merged():
    # Teachers know student classes [0, 1, 2] and [5, 2, 4]; teacher logits
    # are their concatenation, as a `Merged` teacher outputs.
    indices = [[0, 1, 2], [5, 2, 4]]
    t, s = _normal(BATCH, 6), _normal(BATCH, 6)
    term = _built(losses.MergedKD(temperature=2.0, class_indices=indices), 6)
    return term, {"logits": t}, {"logits": s}, None, lambda: losses.merged_kd_loss(
        [t[:, :3], t[:, 3:]], s, indices, 2.0)


def _topk():
    t, s = _normal(BATCH, 8), _normal(BATCH, 8)
    values, indices, rest = topk_summary(t, 3, [2.0])
    return (_built(losses.TopKKD(temperature=2.0, k=3), 8), {"logits": t}, {"logits": s}, None,
            lambda: losses.topk_kd_loss(values, indices, rest[2.0], s, 2.0))


def _fsp():
    shapes = {"t1": (4, 4, 2), "t2": (4, 4, 3)}
    view_t = {k: _normal(BATCH, *v) for k, v in shapes.items()}
    view_s = {"s1": _normal(BATCH, 4, 4, 2), "s2": _normal(BATCH, 4, 4, 3)}
    term = losses.FSP(pairs=[("t1", "t2", "s1", "s2")], pair_weights=[0.5])
    term.build({k: (None,) + v for k, v in shapes.items()},
               {"s1": (None, 4, 4, 2), "s2": (None, 4, 4, 3)})
    return term, view_t, view_s, None, lambda: losses.fsp_loss(
        [(view_t["t1"], view_t["t2"])], [(view_s["s1"], view_s["s2"])], weights=[0.5])


def _overhaul():
    term = losses.Overhaul(["t_relu"], ["s_relu"])
    term._margin_values = [-np.abs(_normal(3, scale=1.0))]  # what `prepare` reads from the BN
    t_tap, s_tap = term.teacher_taps[0], term.student_taps[0]
    term.build({t_tap: (None, 4, 4, 3)}, {s_tap: (None, 4, 4, 2)})
    t, s = _normal(BATCH, 4, 4, 3), _normal(BATCH, 4, 4, 2)

    def expected():
        connected = term.connector_bns[0](term.connector_convs[0](s), training=False)
        return losses.partial_l2_loss(margin_relu(t, term.margin_variables[0]), connected)

    return term, {t_tap: t}, {s_tap: s}, None, expected


def _review():
    term = losses.ReviewKD(["t1", "t2"], ["s1", "s2"], mid_channels=4)
    shapes_t = {"t1": (4, 4, 3), "t2": (2, 2, 5)}
    shapes_s = {"s1": (4, 4, 2), "s2": (2, 2, 3)}
    term.build({k: (None,) + v for k, v in shapes_t.items()},
               {k: (None,) + v for k, v in shapes_s.items()})
    view_t = {k: _normal(BATCH, *v) for k, v in shapes_t.items()}
    view_s = {k: _normal(BATCH, *v) for k, v in shapes_s.items()}

    def expected():
        fused = term.fused_features(view_s, training=False)
        return losses.hcl_loss([view_t["t1"], view_t["t2"]], fused)

    return term, view_t, view_s, None, expected


def _attention():
    term = losses.AttentionTransfer(["a"], ["b"])
    return _pair_case(term, losses.attention_transfer_loss, (4, 4, 3), (8, 8, 2))


# name: (the one function, a case: (term, teacher view, student view, labels,
# the function's value on the same input), batch-level).
CASES = {
    "KD": (losses.kd_loss, lambda: _logit_case(
        losses.KD(temperature=3.0), lambda t, s: losses.kd_loss(t, s, 3.0)), False),
    "DKD": (losses.dkd_loss, lambda: _logit_case(
        losses.DKD(alpha=1.0, beta=2.0, temperature=2.0, warmup_epochs=0),
        lambda t, s, y: losses.dkd_loss(t, s, y, 1.0, 2.0, 2.0), labels=True), False),
    "NKD": (losses.nkd_loss, lambda: _logit_case(
        losses.NKD(temperature=2.0, gamma=1.5),
        lambda t, s, y: losses.nkd_loss(t, s, y, 2.0, 1.5), labels=True), False),
    "DIST": (losses.dist_loss, lambda: _logit_case(
        losses.DIST(beta=1.0, gamma=2.0, temperature=2.0),
        lambda t, s: losses.dist_loss(t, s, 1.0, 2.0, 2.0)), True),
    "MLKD": (losses.mlkd_loss, lambda: _logit_case(
        losses.MLKD(temperatures=(2.0, 4.0)),
        lambda t, s: losses.mlkd_loss(t, s, (2.0, 4.0))), True),
    "TTM": (losses.ttm_loss, lambda: _logit_case(
        losses.TTM(gamma=0.5), lambda t, s: losses.ttm_loss(t, s, 0.5)), False),
    "WTTM": (losses.wttm_loss, lambda: _logit_case(
        losses.WTTM(gamma=0.5), lambda t, s: losses.wttm_loss(t, s, 0.5)), False),
    "ReverseKL": (losses.reverse_kl_loss, lambda: _logit_case(
        losses.ReverseKL(temperature=2.0), lambda t, s: losses.reverse_kl_loss(t, s, 2.0)), False),
    "GeneralizedJSD": (losses.generalized_jsd_loss, lambda: _logit_case(
        losses.GeneralizedJSD(beta=0.3, temperature=2.0),
        lambda t, s: losses.generalized_jsd_loss(t, s, 0.3, 2.0)), False),
    "SkewKL": (losses.skew_kl_loss, lambda: _logit_case(
        losses.SkewKL(alpha=0.2, reverse=True, temperature=2.0),
        lambda t, s: losses.skew_kl_loss(t, s, 0.2, True, 2.0)), False),
    "TVD": (losses.tvd_loss, lambda: _logit_case(
        losses.TVD(temperature=2.0), lambda t, s: losses.tvd_loss(t, s, 2.0)), False),
    "MergedKD": (losses.merged_kd_loss, _merged, False),
    "TopKKD": (losses.topk_kd_loss, _topk, False),
    "CWD": (losses.cwd_loss, lambda: _pair_case(
        losses.CWD("a", "b", temperature=2.0),
        lambda t, s: losses.cwd_loss(t, s, 2.0), (3, 3, 4)), False),
    "FeatureMSE": (losses.feature_mse_loss, lambda: _pair_case(
        losses.FeatureMSE("a", "b"), losses.feature_mse_loss, (3, 3, 4)), False),
    "FitNet": (losses.hint_loss, lambda: _pair_case(
        losses.FitNet("a", "b", regressor=None), losses.hint_loss, (5,)), False),
    "FSP": (losses.fsp_loss, _fsp, False),
    "Overhaul": (losses.partial_l2_loss, _overhaul, False),
    "ReviewKD": (losses.hcl_loss, _review, False),
    "AttentionTransfer": (losses.attention_transfer_loss, _attention, False),
    "RKD": (losses.rkd_loss, lambda: _pair_case(
        losses.RKD("a", "b", distance_weight=25.0, angle_weight=50.0),
        lambda t, s: losses.rkd_loss(t, s, 25.0, 50.0), (5,), (3,)), True),
    "PKT": (losses.pkt_loss, lambda: _pair_case(
        losses.PKT("a", "b"), losses.pkt_loss, (5,), (3,)), True),
    "SP": (losses.sp_loss, lambda: _pair_case(
        losses.SP("a", "b"), losses.sp_loss, (2, 2, 3), (6,)), True),
}
# Wrappers around another term: their function is that term's.
WRAPPERS = {"OnOutput"}


def _ours():
    names = []
    for name in registry.names():
        try:
            cls = registry.get(name)
        except ValueError:  # a name a test file defined twice
            continue
        if cls.__module__.startswith("keras_kd."):
            names.append(name)
    return names


def test_every_registered_loss_has_a_case_here():
    assert set(_ours()) == set(CASES) | WRAPPERS


def _loss_functions(module):
    """The module's public `*_loss` functions."""
    return {
        name for name, value in vars(module).items()
        if inspect.isfunction(value) and not name.startswith("_")
        and name.endswith("_loss") and value.__module__ == module.__name__
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_module_exposes_one_function_named_name_loss(name):
    function = CASES[name][0]
    module = sys.modules[registry.get(name).__module__]
    assert function.__name__.endswith("_loss")
    assert getattr(module, function.__name__) is function
    assert getattr(losses, function.__name__) is function
    assert function.__name__ in losses.__all__
    # Other classes of the same module (RKD, PKT, SP) account for the rest.
    siblings = {CASES[n][0].__name__ for n in CASES
                if registry.get(n).__module__ == module.__name__}
    assert function.__module__ == module.__name__
    assert function.__name__ in _loss_functions(module) <= siblings


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_class_value_is_the_reduced_function(name):
    _, case, batch_level = CASES[name]
    term, teacher, student, labels, expected = case()
    weights = np.array([2.0, 0.0, 1.0, 0.5], "float32")
    got = term(teacher, student, labels=labels, training=False)
    want = expected()
    got, want = ops.convert_to_numpy(got), ops.convert_to_numpy(want)
    if batch_level:
        assert got.shape == want.shape == ()
    else:
        assert got.shape == want.shape == (BATCH,)
        assert len(set(np.round(want, 4))) > 1  # values really differ per sample
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # The Distiller's reduction, as Keras's "sum_over_batch_size": a
    # batch-level scalar is taken as is.
    reduced = float(reduce_per_sample(ops.convert_to_tensor(got), weights))
    reference = float(want) if batch_level else float((want * weights).sum() / BATCH)
    assert reduced == pytest.approx(reference, rel=1e-5, abs=1e-7)


def test_keras_convention_a_keras_loss_and_kd_agree_on_shape():
    # keras.losses.kl_divergence returns (batch,); so does kd_loss at T = 1.
    t, s = _normal(BATCH, 6), _normal(BATCH, 6)
    p = ops.softmax(t, axis=-1)
    q = ops.softmax(s, axis=-1)
    keras_values = np.asarray(keras.losses.kl_divergence(p, q))
    ours = np.asarray(losses.kd_loss(t, s, temperature=1.0))
    assert ours.shape == keras_values.shape == (BATCH,)
    np.testing.assert_allclose(ours, keras_values, rtol=1e-4, atol=1e-6)
