import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite runs once per backend: `python -m pytest` (TensorFlow, every
# test) and `KERAS_BACKEND=jax python -m pytest` (the modules below).
BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402

# Test modules that run on the JAX backend too: every loss's reference
# values, the Distiller's steps (one pass, metrics, sample weights), taps,
# teachers, schedules and stages, semi-supervised and self-distillation,
# save/load and export, and the cross-backend checks. The others test
# TensorFlow-only features (tf.distribute, the tf.data teacher cache, TFLite)
# or the tools built on tf.data (run configs, bench, examples).
BOTH_BACKENDS = {
    "test_backends",
    "test_balance",
    "test_dense_labels",
    "test_feature_per_sample",
    "test_lm_divergences",
    "test_logit_standardization",
    "test_positions",
    "test_losses_cwd",
    "test_losses_dense",
    "test_losses_dist",
    "test_losses_topk",
    "test_outputs",
    "test_distiller",
    "test_errors",
    "test_kd_loss",
    "test_losses_attention",
    "test_losses_decoupled",
    "test_losses_fsp",
    "test_losses_functional",
    "test_losses_hints",
    "test_losses_overhaul",
    "test_losses_relational",
    "test_losses_review",
    "test_registry",
    "test_saving",
    "test_schedules",
    "test_self_distillation",
    "test_semi_supervised",
    "test_stages",
    "test_taps",
    "test_teacher_cache_backends",
    "test_teachers",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only: a test of a TensorFlow-only feature (skipped on JAX)"
    )
    config.addinivalue_line(
        "markers", "both_backends: runs on JAX too, although it calls TensorFlow (e.g. to "
        "load a SavedModel)"
    )


def _drives_tensorflow(item):
    """True for a test that calls TensorFlow itself (tf.GradientTape,
    tf.function, tf.data): it checks the TensorFlow path and runs in the
    TensorFlow pass; its numpy reference values run on JAX through the
    module's other tests."""
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return False
    return "tf." in source or "tensorflow" in source


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    keep, drop = [], []
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if (module in BOTH_BACKENDS and item.get_closest_marker("tensorflow_only") is None
                and (item.get_closest_marker("both_backends") or not _drives_tensorflow(item))):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return f"keras backend: {BACKEND}"


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
