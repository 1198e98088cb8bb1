"""A Distiller's terms checked against the Distiller and its models
(keras_kd.checks.terms): one Distiller per term, no softmax term on a
one-logit head."""

import pytest

import keras_kd
from keras_kd import losses
from tests.helpers.distillers import kd_distiller as _distiller
from tests.helpers.models import tiny_cnn


def test_a_term_reused_in_a_second_distiller_is_refused():
    hint = losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")
    kd = losses.KD(temperature=4.0)
    keras_kd.Distiller(tiny_cnn(16, name="t1"), tiny_cnn(8, name="s1"), losses=[kd, hint])
    with pytest.raises(ValueError, match=r"'hint' \(FeatureMSE\) already belongs.*from_config"):
        keras_kd.Distiller(tiny_cnn(16, name="t2"), tiny_cnn(4, name="s2"), losses=[hint])
    # The advertised fix works: an untrained copy of the term.
    fresh = losses.FeatureMSE.from_config(hint.get_config())
    keras_kd.Distiller(tiny_cnn(16, name="t2"), tiny_cnn(4, name="s2"), losses=[fresh])


def test_a_failed_distiller_does_not_claim_its_terms():
    kd = losses.KD(temperature=4.0)
    with pytest.raises(ValueError, match="same model object"):
        student = tiny_cnn(8)
        keras_kd.Distiller(student, student, losses=[kd])
    keras_kd.Distiller(tiny_cnn(16, name="t"), tiny_cnn(8, name="s"), losses=[kd])


def test_softmax_terms_on_a_one_logit_binary_head_are_refused():
    binary = dict(teacher=tiny_cnn(16, classes=1, name="teacher"),
                  student=tiny_cnn(8, classes=1, name="student"))
    with pytest.raises(ValueError, match=r"one logit.*\['kd'\].*would be 0"):
        _distiller(loss="binary_crossentropy", **binary)
