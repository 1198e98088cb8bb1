"""Top-k + rest KD against an independent numpy derivation."""

import numpy as np
import pytest

from keras_kd.losses.kd import kd_loss
from keras_kd.losses.topk_kd import TopKKD, topk_kd_loss, topk_summary


def numpy_topk_kd(teacher, student, k, temperature):
    """Merge every class outside the teacher's top-k into one, for both; KL; × T²."""
    out = []
    for t, s in zip(np.asarray(teacher, np.float64), np.asarray(student, np.float64)):
        p = np.exp(t / temperature - np.max(t / temperature))
        p /= p.sum()
        q = np.exp(s / temperature - np.max(s / temperature))
        q /= q.sum()
        top = np.argsort(-t, kind="stable")[:k]
        rest = np.setdiff1d(np.arange(t.size), top)
        p2 = np.append(p[top], p[rest].sum())
        q2 = np.append(q[top], q[rest].sum())
        keep = p2 > 0
        out.append(temperature**2 * np.sum(p2[keep] * (np.log(p2[keep]) - np.log(q2[keep]))))
    return np.array(out)


@pytest.fixture
def logits():
    rng = np.random.default_rng(3)
    return (rng.normal(size=(6, 100)) * 3).astype("float32"), (rng.normal(size=(6, 100)) * 2).astype("float32")


@pytest.mark.parametrize("k", [1, 10, 50])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 8.0])
def test_topk_kd_matches_numpy_element_by_element(logits, k, temperature):
    t, s = logits
    values, indices, rest = topk_summary(t, k, [temperature])
    got = np.asarray(topk_kd_loss(values, indices, rest[temperature], s, temperature))
    # The KL cancels log-normalizers of size ~5 in float32 (one ulp, ~5e-7,
    # each; TensorFlow's and PyTorch's logsumexp round them differently),
    # then is scaled by T².
    np.testing.assert_allclose(got, numpy_topk_kd(t, s, k, temperature), rtol=1e-5,
                               atol=1e-6 * temperature**2)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_topk_kd_with_every_class_is_full_kd(logits, temperature):
    t, s = logits
    values, indices, rest = topk_summary(t, 100, [temperature])
    assert np.isneginf(np.asarray(rest[temperature])).all()
    got = np.asarray(topk_kd_loss(values, indices, rest[temperature], s, temperature))
    np.testing.assert_allclose(got, np.asarray(kd_loss(t, s, temperature)), rtol=1e-5)
    # And below full KD for k < classes (a coarsening never increases KL).
    v, i, r = topk_summary(t, 5, [temperature])
    assert (np.asarray(topk_kd_loss(v, i, r[temperature], s, temperature))
            <= np.asarray(kd_loss(t, s, temperature)) + 1e-5).all()


def test_topk_kd_gradient_is_finite_when_k_is_every_class(logits):
    import tensorflow as tf

    t, s = logits
    values, indices, rest = topk_summary(t, 100, [4.0])
    s = tf.Variable(s)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(topk_kd_loss(values, indices, rest[4.0], s, 4.0))
    grad = tape.gradient(loss, s).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_topk_term_live_matches_function_and_refuses_missing_temperature(logits):
    t, s = logits
    term = TopKKD(temperature=4.0, k=10)
    live = np.asarray(term.call({"logits": t}, {"logits": s}))
    np.testing.assert_allclose(live, numpy_topk_kd(t, s, 10, 4.0), rtol=1e-5)
    values, indices, rest = topk_summary(t, 10, [2.0])
    cached = {"logits@topk_values": values, "logits@topk_indices": indices,
              "logits@rest_lse@T=2.0": rest[2.0]}
    with pytest.raises(ValueError, match=r"rest mass only for T in \[2.0\]"):
        term.call(cached, {"logits": s})
    assert TopKKD.from_config(term.get_config()).k == 10
    with pytest.raises(ValueError, match="positive integer"):
        TopKKD(k=0)
