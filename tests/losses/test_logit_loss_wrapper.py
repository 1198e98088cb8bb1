"""`LogitLossWrapper`: a term built from its function and keyword arguments."""

import keras
import numpy as np
import pytest
from keras import ops

import keras_kd
from keras_kd.losses.base import reduce_per_sample


def cosine_loss(teacher_logits, student_logits, scale=1.0, mask=None):
    t = ops.normalize(teacher_logits, axis=-1)
    s = ops.normalize(student_logits, axis=-1)
    return scale * (1.0 - ops.sum(t * s, axis=-1))


class Cosine(keras_kd.losses.LogitLossWrapper):
    def __init__(self, scale=1.0, weight=1.0, ignore_index=-1, name="cosine", **kwargs):
        super().__init__(cosine_loss, {"scale": scale}, weight=weight,
                         ignore_index=ignore_index, name=name, **kwargs)


def numpy_cosine(t, s, scale):
    t = t / np.linalg.norm(t, axis=-1, keepdims=True)
    s = s / np.linalg.norm(s, axis=-1, keepdims=True)
    return scale * (1.0 - (t * s).sum(-1))


def test_call_is_the_function_with_the_terms_arguments():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    term = Cosine(scale=3.0)
    got = ops.convert_to_numpy(term.call({"logits": t}, {"logits": s}))
    np.testing.assert_allclose(got, numpy_cosine(t, s, 3.0), rtol=1e-5)
    term.scale = 0.5  # an attribute: assigning it changes what is computed
    got = ops.convert_to_numpy(term.call({"logits": t}, {"logits": s}))
    np.testing.assert_allclose(got, numpy_cosine(t, s, 0.5), rtol=1e-5)


def test_get_config_round_trips_the_functions_arguments():
    term = Cosine(scale=2.5, weight=0.25, ignore_index=255, name="c")
    config = term.get_config()
    assert {k: config[k] for k in ("scale", "weight", "ignore_index", "name")} == {
        "scale": 2.5, "weight": 0.25, "ignore_index": 255, "name": "c"}
    clone = Cosine.from_config(config)
    assert (clone.scale, clone.weight, clone.ignore_index, clone.name) == (2.5, 0.25, 255, "c")


@pytest.mark.parametrize("make, reference", [
    (lambda: keras_kd.losses.KD(temperature=3.0),
     lambda t, s, y: keras_kd.losses.kd_loss(t, s, temperature=3.0)),
    (lambda: keras_kd.losses.DKD(alpha=0.5, beta=2.0, temperature=2.0, warmup_epochs=0),
     lambda t, s, y: keras_kd.losses.dkd_loss(t, s, y, alpha=0.5, beta=2.0, temperature=2.0)),
    (lambda: keras_kd.losses.NKD(temperature=2.0, gamma=1.0),
     lambda t, s, y: keras_kd.losses.nkd_loss(t, s, y, temperature=2.0, gamma=1.0)),
    (lambda: keras_kd.losses.DIST(beta=2.0, gamma=0.5, temperature=1.5),
     lambda t, s, y: keras_kd.losses.dist_loss(t, s, beta=2.0, gamma=0.5, temperature=1.5)),
])
def test_the_wrapped_terms_compute_their_function_with_their_settings(make, reference):
    # A swapped or dropped argument in the wrapper would change these values.
    rng = np.random.default_rng(1)
    t = rng.normal(size=(6, 7)).astype("float32")
    s = rng.normal(size=(6, 7)).astype("float32")
    y = rng.integers(0, 7, size=(6,))
    term = make()
    got = reduce_per_sample(term.call({"logits": t}, {"logits": s}, labels=y))
    want = reduce_per_sample(reference(t, s, y))
    np.testing.assert_allclose(ops.convert_to_numpy(got), ops.convert_to_numpy(want), rtol=1e-6)
    clone = type(term).from_config(term.get_config())
    again = reduce_per_sample(clone.call({"logits": t}, {"logits": s}, labels=y))
    np.testing.assert_allclose(ops.convert_to_numpy(again), ops.convert_to_numpy(want), rtol=1e-6)
