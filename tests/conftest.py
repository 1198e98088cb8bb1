import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# .ci/run sets this: there the data must be present, and its absence fails.
REQUIRE_REAL_DATA = "KERAS_KD_REQUIRE_REAL_DATA"


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


@pytest.fixture
def fashion_mnist():
    """The real Fashion-MNIST files of the Debian package; skips without them
    (fails instead when KERAS_KD_REQUIRE_REAL_DATA=1, as in CI)."""
    missing = [f for f in FASHION_MNIST_FILES
               if not os.path.isfile(os.path.join(FASHION_MNIST_DIR, f))]
    if missing:
        message = (
            f"Real-data test: {FASHION_MNIST_DIR} lacks {', '.join(missing)}. Get the data "
            "with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; .ci/run does "
            f"this), or set {REQUIRE_REAL_DATA}=1 to make its absence a failure."
        )
        if os.environ.get(REQUIRE_REAL_DATA) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return FASHION_MNIST_DIR
