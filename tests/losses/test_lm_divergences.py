"""The token-level divergences of language-model distillation (kd_loss's
per-position values, reverse KL, generalized JSD, skew KL, TVD) against
float64 numpy references written from the formulas: values, and gradients
(the backend's autodiff through the written-out gradients) against central
finite differences of those formulas; at several temperatures, on
`(batch, vocab)` and `(batch, time, vocab)` logits, with masks, and at
large vocabularies with extreme logits. The chunked computation is tested
in test_positions.py."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_kd import losses
from keras_kd.losses import registry
from tests.helpers.doctests import assert_doctests
from tests.helpers.numpy_divergences import (
    backend_value_and_gradients,
    divergence,
    finite_difference_gradients,
    log_softmax,
)

FUNCTIONS = {
    "kd": losses.kd_loss,
    "reverse_kl": losses.reverse_kl_loss,
    "generalized_jsd": losses.generalized_jsd_loss,
    "skew_kl": losses.skew_kl_loss,
    "tvd": losses.tvd_loss,
}
# (test id, divergence, its settings)
CASES = [
    ("kd", "kd", {}),
    ("reverse_kl", "reverse_kl", {}),
    ("jsd_beta_0.5", "generalized_jsd", {"beta": 0.5}),
    ("jsd_beta_0.2", "generalized_jsd", {"beta": 0.2}),
    ("jsd_beta_0", "generalized_jsd", {"beta": 0.0}),
    ("jsd_beta_1", "generalized_jsd", {"beta": 1.0}),
    ("skl_alpha_0.1", "skew_kl", {"alpha": 0.1}),
    ("srkl_alpha_0.1", "skew_kl", {"alpha": 0.1, "reverse": True}),
    ("skl_alpha_0.5", "skew_kl", {"alpha": 0.5}),
    ("srkl_alpha_0", "skew_kl", {"alpha": 0.0, "reverse": True}),
    ("tvd", "tvd", {}),
]
IDS = [case[0] for case in CASES]
TEMPERATURES = [0.5, 1.0, 4.0, 20.0]
SHAPES = {"2d": (5, 7), "3d": (2, 4, 7)}


def _logits(shape, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(scale=scale, size=shape).astype("float32"),
            rng.normal(scale=scale, size=shape).astype("float32"))


def _call(name, t, s, temperature, settings, **kwargs):
    return FUNCTIONS[name](t, s, temperature=temperature, **settings, **kwargs)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_and_gradients_match_numpy(case, temperature, shape):
    _, name, settings = case
    t, s = _logits(SHAPES[shape], seed=len(name) + int(temperature * 10))
    weights = np.random.default_rng(1).uniform(0.5, 1.5, size=SHAPES[shape][:-1])

    per_position = np.asarray(_call(name, t, s, temperature, settings, per_position=True))
    want = divergence(name, t, s, temperature, **settings)
    assert per_position.shape == want.shape == SHAPES[shape][:-1]
    assert np.unique(want).size == want.size  # positions really differ
    # Float32 in log space: ~1e-7 relative for the KLs (KD's cancellation-
    # free form); the mixtures (JSD, skew KL) and TVD sum p·(log p − log m)
    # directly, to float32's absolute resolution of log-probabilities
    # (~1e-7), which at T = 20 (divergences ~1e-3) is ~5e-5 relative.
    np.testing.assert_allclose(per_position, want, rtol=2e-5, atol=3e-7)
    per_sample = np.asarray(_call(name, t, s, temperature, settings))
    assert per_sample.shape == (SHAPES[shape][0],)
    np.testing.assert_allclose(per_sample, want.reshape(len(want), -1).mean(axis=1),
                               rtol=2e-5, atol=3e-7)

    value, (grad_t, grad_s) = backend_value_and_gradients(
        lambda a, b: _call(name, a, b, temperature, settings, per_position=True), t, s, weights)
    assert value == pytest.approx(float((want * weights).sum()), rel=2e-5, abs=3e-6)
    want_t, want_s = finite_difference_gradients(name, t, s, weights, temperature, **settings)
    for got, expected in ((grad_t, want_t), (grad_s, want_s)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_masked_positions_contribute_exactly_zero(case):
    _, name, settings = case
    t, s = _logits((3, 5, 6), seed=3)
    t[1, 2] = [1e4, -1e4, 0, 5e3, -5e3, 1.0]  # extreme logits where the mask is 0
    mask = np.ones((3, 5), "float32")
    mask[1, 2] = mask[0, 4] = 0.0
    mask[2] = 0.0  # a sample with no valid position
    values = np.asarray(_call(name, t, s, 2.0, settings, mask=mask, per_position=True))
    full = divergence(name, t, s, 2.0, **settings)
    assert np.all(values[mask == 0] == 0.0)
    np.testing.assert_allclose(values[mask == 1], full[mask == 1], rtol=2e-5)
    per_sample = np.asarray(_call(name, t, s, 2.0, settings, mask=mask))
    want = (full * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)
    np.testing.assert_allclose(per_sample, want, rtol=2e-5)
    assert per_sample[2] == 0.0
    _, (grad_t, grad_s) = backend_value_and_gradients(
        lambda a, b: _call(name, a, b, 2.0, settings, mask=mask), t, s, np.ones(3))
    for grad in (grad_t, grad_s):
        assert np.all(grad[mask == 0] == 0.0)
        assert np.abs(grad[mask == 1]).max() > 0


@pytest.mark.parametrize("vocab, positions", [(32_000, (2, 3)), (128_000, (1, 2))])
@pytest.mark.parametrize("temperature", [0.5, 1.0])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_large_vocabulary_with_extreme_logits_stays_finite_and_exact(case, temperature, vocab,
                                                                      positions):
    # Logits spread over ±1e4 (float32), most probabilities underflow to 0.
    _, name, settings = case
    rng = np.random.default_rng(4)
    shape = positions + (vocab,)
    t = rng.uniform(-1e4, 1e4, size=shape).astype("float32")
    s = rng.uniform(-1e4, 1e4, size=shape).astype("float32")
    s[..., :50] = t[..., :50] + rng.normal(scale=20.0, size=positions + (50,))  # some overlap
    t[0, 0, 7] = s[0, 0, 7] = 1e4  # one shared top token
    values = np.asarray(_call(name, t, s, temperature, settings, per_position=True))
    want = divergence(name, t, s, temperature, **settings)
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
    weights = np.ones(positions)
    _, (grad_t, grad_s) = backend_value_and_gradients(
        lambda a, b: _call(name, a, b, temperature, settings, per_position=True), t, s, weights)
    for grad in (grad_t, grad_s):
        assert np.all(np.isfinite(grad))
        # Softmax is shift-invariant, so each row's gradient sums to 0.
        np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-5 * np.abs(grad).max() + 1e-6)


def test_the_special_cases_are_the_divergences_they_name():
    t, s = _logits((4, 9), seed=5)
    values = lambda fn, *a, **k: np.asarray(fn(*a, **k))  # noqa: E731
    for temperature in (0.5, 3.0):
        forward = values(losses.kd_loss, t, s, temperature) / temperature**2
        reverse = values(losses.reverse_kl_loss, t, s, temperature)
        np.testing.assert_allclose(reverse, values(losses.kd_loss, s, t, temperature)
                                   / temperature**2, rtol=1e-6)
        # TRL: beta = 0 is the forward KL, beta = 1 the reverse KL.
        np.testing.assert_allclose(values(losses.generalized_jsd_loss, t, s, 0.0, temperature),
                                   forward, rtol=1e-6)
        np.testing.assert_allclose(values(losses.generalized_jsd_loss, t, s, 1.0, temperature),
                                   reverse, rtol=1e-6)
        # DistiLLM: alpha = 0 is the plain KL; the reverse skew swaps the sides.
        np.testing.assert_allclose(values(losses.skew_kl_loss, t, s, 0.0, False, temperature),
                                   forward, rtol=1e-6)
        np.testing.assert_allclose(values(losses.skew_kl_loss, t, s, 0.0, True, temperature),
                                   reverse, rtol=1e-6)
        np.testing.assert_allclose(values(losses.skew_kl_loss, t, s, 0.3, True, temperature),
                                   values(losses.skew_kl_loss, s, t, 0.3, False, temperature),
                                   rtol=1e-6)
        np.testing.assert_allclose(values(losses.generalized_jsd_loss, t, s, 0.3, temperature),
                                   values(losses.generalized_jsd_loss, s, t, 0.7, temperature),
                                   rtol=1e-5)
        np.testing.assert_allclose(values(losses.tvd_loss, t, s, temperature),
                                   values(losses.tvd_loss, s, t, temperature), rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_zero_for_equal_distributions(case):
    _, name, settings = case
    t, _ = _logits((3, 2, 8), seed=6)
    for s in (t, t + 5.0):  # softmax is shift-invariant
        np.testing.assert_allclose(
            np.asarray(_call(name, t, s, 2.0, settings, per_position=True)), 0.0, atol=1e-6)


def test_generalized_jsd_matches_trls_formula_and_reduction():
    # TRL (huggingface/trl, trl/experimental/gkd/gkd_trainer.py), in numpy:
    # log-softmax of logits / T, the mixture as logsumexp of
    # [log q + log(1 − β), log p + log β], kl_div(input, target, log_target)
    # = exp(target)·(target − input), jsd = β·kl_teacher + (1 − β)·kl_student,
    # masked by labels != -100, "batchmean" = sum / number of valid tokens.
    t, s = _logits((3, 5, 11), seed=7)
    labels = np.random.default_rng(8).integers(0, 11, size=(3, 5))
    labels[0, :2] = labels[2, 4] = -100
    beta, temperature = 0.3, 1.7
    log_q, log_p = log_softmax(s / temperature), log_softmax(t / temperature)
    mixture = np.logaddexp(log_q + np.log1p(-beta), log_p + np.log(beta))
    kl_div = lambda inp, target: np.exp(target) * (target - inp)  # noqa: E731
    jsd = beta * kl_div(mixture, log_p) + (1 - beta) * kl_div(mixture, log_q)
    valid = labels != -100
    trl_batchmean = jsd.sum(axis=-1)[valid].sum() / valid.sum()
    ours = losses.generalized_jsd_loss(t, s, beta, temperature, mask=valid, per_position=True)
    assert float(ops.sum(ours)) / valid.sum() == pytest.approx(trl_batchmean, rel=1e-5)


def test_skew_kl_follows_the_paper_where_distillms_code_differs():
    # DistiLLM's skewed_forward_kl returns −Σ p·log(α·p + (1−α)·q), the
    # cross-entropy: the paper's KL plus the teacher's entropy. Its
    # skewed_reverse_kl is the paper's KL. Both use labels != -100 and a
    # token mean over the batch.
    t, s = _logits((2, 6, 9), seed=9)
    labels = np.random.default_rng(10).integers(0, 9, size=(2, 6))
    labels[1, 3:] = -100
    mask = (labels != -100).astype("float32")
    p, q = np.exp(log_softmax(t)), np.exp(log_softmax(s))
    lam = 0.1
    code_forward = -((p * np.log(lam * p + (1 - lam) * q)).sum(-1) * mask).sum() / mask.sum()
    code_reverse = -((q * np.log((1 - lam) * p + lam * q)).sum(-1) * mask
                     - (q * np.log(q)).sum(-1) * mask).sum() / mask.sum()
    entropy = (-(p * np.log(p)).sum(-1) * mask).sum() / mask.sum()
    forward = float(ops.sum(losses.skew_kl_loss(t, s, lam, mask=mask, per_position=True)))
    reverse = float(ops.sum(losses.skew_kl_loss(t, s, lam, True, mask=mask, per_position=True)))
    assert forward / mask.sum() == pytest.approx(code_forward - entropy, rel=1e-5)
    assert reverse / mask.sum() == pytest.approx(code_reverse, rel=1e-5)


def test_kd_loss_per_position_keeps_the_per_sample_default():
    t, s = _logits((2, 3, 5), seed=11)
    per_sample = np.asarray(losses.kd_loss(t, s, 2.0))
    per_position = np.asarray(losses.kd_loss(t, s, 2.0, per_position=True))
    assert per_sample.shape == (2,) and per_position.shape == (2, 3)
    np.testing.assert_allclose(per_position, divergence("kd", t, s, 2.0), rtol=1e-5)
    np.testing.assert_allclose(per_sample, per_position.mean(axis=1), rtol=1e-6)


TERMS = {
    "ReverseKL": (lambda: losses.ReverseKL(temperature=2.0, chunk_size=3),
                  lambda t, s, m: losses.reverse_kl_loss(t, s, 2.0, mask=m)),
    "GeneralizedJSD": (lambda: losses.GeneralizedJSD(beta=0.3, temperature=1.5),
                       lambda t, s, m: losses.generalized_jsd_loss(t, s, 0.3, 1.5, mask=m)),
    "SkewKL": (lambda: losses.SkewKL(alpha=0.2, reverse=True, temperature=2.0),
               lambda t, s, m: losses.skew_kl_loss(t, s, 0.2, True, 2.0, mask=m)),
    "TVD": (lambda: losses.TVD(temperature=0.5, chunk_size=4),
            lambda t, s, m: losses.tvd_loss(t, s, 0.5, mask=m)),
    "KD": (lambda: losses.KD(temperature=3.0, chunk_size=5),
           lambda t, s, m: losses.kd_loss(t, s, 3.0, mask=m)),
}


@pytest.mark.parametrize("name", sorted(TERMS))
def test_the_terms_are_their_functions_with_the_label_mask(name):
    make, function = TERMS[name]
    t, s = _logits((3, 4, 6), seed=12)
    labels = np.random.default_rng(13).integers(0, 6, size=(3, 4))
    labels[0, 1] = labels[2, 3] = -100  # Hugging Face's ignored label
    term = make()
    term.build({"logits": (None, 4, 6)}, {"logits": (None, 4, 6)})
    assert registry.get(name) is type(term)
    got = np.asarray(term({"logits": t}, {"logits": s}, labels=labels, training=False))
    want = np.asarray(function(t, s, (labels >= 0).astype("float32")))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(term))
    assert type(clone) is type(term) and clone.get_config() == term.get_config()
    clone.build({"logits": (None, 4, 6)}, {"logits": (None, 4, 6)})
    again = np.asarray(clone({"logits": t}, {"logits": s}, labels=labels, training=False))
    np.testing.assert_allclose(again, want, rtol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: losses.generalized_jsd_loss(np.zeros((1, 2)), np.zeros((1, 2)), beta=1.5),
     r"beta must be in \[0, 1\], got 1.5"),
    (lambda: losses.GeneralizedJSD(beta="0.5"), "beta must be a number"),
    (lambda: losses.skew_kl_loss(np.zeros((1, 2)), np.zeros((1, 2)), alpha=1.0),
     r"alpha must be in \[0, 1\), got 1.0. At alpha = 1 .* the loss is 0"),
    (lambda: losses.SkewKL(alpha=-0.1), r"alpha must be in \[0, 1\)"),
    (lambda: losses.SkewKL(reverse="yes"), "reverse must be True or False"),
    (lambda: losses.TVD(temperature=0), "temperature must be a finite number > 0"),
    (lambda: losses.ReverseKL(chunk_size=0), "chunk_size must be None .* >= 1, got 0"),
    (lambda: losses.reverse_kl_loss(np.zeros((1, 2)), np.zeros((1, 2)), chunk_size=2.5),
     "chunk_size must be None"),
    (lambda: losses.tvd_loss(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), mask=np.ones((2, 4))),
     r"tvd_loss: the mask must have the shape of the logits without their class axis, \(2, 3\)"),
    (lambda: losses.kd_loss(np.zeros((1, 2)), np.zeros((1, 2)), per_position=1),
     "per_position must be True or False"),
    (lambda: losses.generalized_jsd_loss(np.zeros((2, 3)), np.zeros((2, 4))),
     r"generalized_jsd_loss: teacher logits \(2, 3\) and student logits \(2, 4\)"),
])
def test_bad_arguments_are_refused_with_the_fix(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_docstring_examples_run():
    from keras_kd.losses import generalized_jsd, kd, reverse_kl, skew_kl, tvd

    assert_doctests(kd, {"kd_loss": 5})
    assert_doctests(reverse_kl, {"reverse_kl_loss": 3})
    assert_doctests(generalized_jsd, {"generalized_jsd_loss": 3})
    assert_doctests(skew_kl, {"skew_kl_loss": 3})
    assert_doctests(tvd, {"tvd_loss": 3})
