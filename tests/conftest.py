import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_policy():
    """Fixed seeds for every test; the dtype policy restored after it."""
    keras.utils.set_random_seed(1234)
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


@pytest.fixture
def digits_batch():
    """32 real digits images and labels (embedded data)."""
    from keras_kd import datasets

    x, y = datasets.load("digits", "train", as_numpy=True)
    return x[:32], y[:32]
