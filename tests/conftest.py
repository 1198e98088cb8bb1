import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The suite runs once per backend: `python -m pytest` (TensorFlow, every
# test), then `KERAS_BACKEND=jax python -m pytest` and
# `KERAS_BACKEND=torch python -m pytest` (the modules below).
BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if BACKEND == "torch":
    # `jit_compile=True` is Keras's `torch.compile` on PyTorch: on CPU,
    # Dynamo traces Keras's layers through hundreds of graph breaks and
    # recompilations, 2.5 minutes for one step of a two-conv student (the
    # losses equal the eager step's). The torch pass runs the tests'
    # jit_compile=True variants on the eager step instead.
    os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")

import keras  # noqa: E402
import pytest  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))

# Test modules (paths relative to tests/) that run on every backend (the JAX
# and PyTorch passes too): every loss's reference values, the Distiller's steps (one pass, metrics,
# sample weights), taps, teachers, schedules and stages, semi-supervised and
# self-distillation, save/load and export, and the cross-backend checks. The
# others test TensorFlow-only features (tf.distribute, the tf.data teacher
# cache, TFLite) or the tools built on tf.data (run configs, bench, examples).
# An entry "path::test_name" adds one test of another module.
EVERY_BACKEND = {
    "backends/test_tensorflow_and_jax.py",
    "backends/test_torch_step.py",
    "checks/test_models.py",
    "checks/test_numbers.py",
    "losses/test_attention_transfer.py",
    "losses/test_cwd.py",
    "losses/test_dense.py",
    "losses/test_dist.py",
    "losses/test_dkd.py",
    "losses/test_dkd_nkd.py",
    "losses/test_feature_mse.py",
    "losses/test_fitnet.py",
    "losses/test_fsp.py",
    "losses/test_functional.py",
    "losses/test_kd.py",
    "losses/test_lm_divergences.py",
    "losses/test_positions.py",
    "losses/test_logit_standardization.py",
    "losses/test_merged_kd.py",
    "losses/test_mlkd.py",
    "losses/test_nkd.py",
    "losses/test_overhaul.py",
    "losses/test_registry.py",
    "losses/test_relational.py",
    "losses/test_review.py",
    "losses/test_topk_kd.py",
    "losses/test_ttm.py",
    "regimes/test_schedules.py",
    "regimes/test_self_distillation.py",
    "regimes/test_stages.py",
    "taps/test_outputs.py",
    "taps/test_views.py",
    "teachers/caching/test_backends.py",
    "teachers/caching/test_teacher_cache.py::test_teacher_cache_is_reexported",
    "teachers/test_ensemble.py",
    "teachers/test_merged.py",
    "test_balance.py",
    "test_distiller.py",
    "test_labels.py",
    "test_saving.py",
    "test_semi_supervised.py",
}

# Tests of the modules above that run in the TensorFlow pass only
# ("path::test_name"): they ran there alone before the tests were grouped by
# what they test (issue 27), and have not been checked on JAX since.
TENSORFLOW_PASS_ONLY = {
    "checks/test_numbers.py::test_non_numbers_are_still_refused",
    "checks/test_numbers.py::test_numpy_scalars_are_accepted_wherever_numbers_are",
    "checks/test_numbers.py::test_tensors_as_temperature_are_refused_but_numpy_0d_arrays_are_numbers",
    "losses/test_dist.py::test_dist_one_sample_drops_only_the_intra_class_term",
    "losses/test_dist.py::test_dist_one_valid_pixel_and_no_valid_pixel",
    "losses/test_relational.py::test_final_batch_of_one_sample_keeps_the_epoch_finite",
    "losses/test_relational.py::test_one_sample_gives_exactly_zero_and_zero_gradients",
    "teachers/test_ensemble.py::test_an_ensemble_of_one_teacher_twice_is_refused",
    "teachers/test_ensemble.py::test_an_ensemble_teacher_trains_saves_and_reloads",
    "test_distiller.py::test_class_weight_equals_the_sample_weights_it_stands_for",
    "test_distiller.py::test_mixed_precision_with_integer_labels",
    "test_distiller.py::test_predict_on_labeled_batches_ignores_the_labels",
    "test_distiller.py::test_sample_weight_of_shape_n_by_1_equals_shape_n",
    "test_distiller.py::test_validation_split_and_tuple_give_val_metrics",
    "test_saving.py::test_distiller_save_needs_a_keras_archive",
    "test_saving.py::test_model_checkpoint_callbacks",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow_only: a test of a TensorFlow-only feature (deselected in the "
        "JAX and PyTorch passes)"
    )
    config.addinivalue_line(
        "markers", "every_backend: runs in the JAX and PyTorch passes too, although it calls "
        "TensorFlow (e.g. to load a SavedModel, or to build tf.data pipelines)"
    )
    stale = sorted(entry for entry in EVERY_BACKEND | TENSORFLOW_PASS_ONLY
                   if not os.path.isfile(os.path.join(TESTS, entry.split("::")[0])))
    if stale:
        raise pytest.UsageError(f"tests/conftest.py names test modules that do not exist: {stale}")


def _drives_tensorflow(item):
    """True for a test that calls TensorFlow itself (tf.GradientTape,
    tf.function, tf.data): it checks the TensorFlow path and runs in the
    TensorFlow pass; its numpy reference values run on JAX and PyTorch
    through the module's other tests."""
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return False
    return "tf." in source or "tensorflow" in source


def _listed_for_jax(item):
    """Whether EVERY_BACKEND lists the test's module or the test itself (and
    TENSORFLOW_PASS_ONLY does not hold it back)."""
    module = os.path.relpath(str(item.path), TESTS).replace(os.sep, "/")
    test = f"{module}::{getattr(item, 'originalname', item.name)}"
    return (module in EVERY_BACKEND or test in EVERY_BACKEND) and test not in TENSORFLOW_PASS_ONLY


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    keep, drop = [], []
    for item in items:
        if (_listed_for_jax(item) and item.get_closest_marker("tensorflow_only") is None
                and (item.get_closest_marker("every_backend") or not _drives_tensorflow(item))):
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
