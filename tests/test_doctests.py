"""Docstring examples of the modules whose tests do not run them elsewhere
(every loss module's own test file runs its examples with a floor)."""

import pytest

from keras_kd import datasets
from keras_kd.losses import feature_mse as features
from keras_kd.losses import kd as logits
from keras_kd.losses import _pair as pair
from tests.helpers.doctests import assert_doctests


@pytest.mark.parametrize("module, examples", [
    (logits, {"kd_loss": 1}),
    (features, {"feature_mse_loss": 2}),
    (pair, {"sum_over_pairs": 1}),
    (datasets, {"validation_indices": 2}),
], ids=["logits", "features", "pair", "datasets"])
def test_docstring_examples_are_there_and_pass(module, examples):
    assert_doctests(module, examples)


def test_a_deleted_example_fails_the_check():
    saved = features.feature_mse_loss.__doc__
    try:
        features.feature_mse_loss.__doc__ = saved.split(">>>")[0]
        with pytest.raises(AssertionError, match="feature_mse_loss"):
            assert_doctests(features, {"feature_mse_loss": 2})
    finally:
        features.feature_mse_loss.__doc__ = saved
