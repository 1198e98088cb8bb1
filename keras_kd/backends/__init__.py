"""The thin per-backend training steps of the `Distiller`.

The objective (teacher outputs, one student pass, the terms, the metrics) is
written once in `keras_kd/distiller.py` with `keras.ops`. What differs per
backend is only how a gradient step is taken:

- `tensorflow.py`: `train_step(data)` with `tf.GradientTape`, the
  optimizer's loss scaling, and `tf.distribute` replica handling;
- `jax.py`: the stateless `train_step(state, data)` Keras's JAX trainer
  calls, with `jax.value_and_grad` over the same objective;
- `torch.py`: `train_step(data)` for Keras's torch trainer, with
  `loss.backward()` and the teacher under `torch.no_grad()`.

`steps_class()` picks the one for `keras.backend.backend()`.
"""

import keras

SUPPORTED = ("tensorflow", "jax", "torch")


class UnsupportedBackend:
    """Stands in on other backends (e.g. numpy, for validating run configs):
    the Distiller refuses to be built there, see `check_backend`."""


def check_backend(what="keras_kd.Distiller"):
    """Raises a clear error on a backend keras-kd cannot train on."""
    backend = keras.backend.backend()
    if backend not in SUPPORTED:
        raise RuntimeError(
            f"{what} trains on the {', '.join(SUPPORTED[:-1])} and {SUPPORTED[-1]} "
            f"backends; Keras is using '{backend}'. Set KERAS_BACKEND=tensorflow, "
            "KERAS_BACKEND=jax or KERAS_BACKEND=torch before importing keras."
        )


def steps_class():
    """The mixin holding `train_step`/`test_step` for the active backend."""
    backend = keras.backend.backend()
    # Imported here, not at the top: each module imports its own framework,
    # which need not be installed when another backend is in use.
    if backend == "tensorflow":
        from keras_kd.backends.tensorflow import TensorFlowSteps

        return TensorFlowSteps
    if backend == "jax":
        from keras_kd.backends.jax import JaxSteps

        return JaxSteps
    if backend == "torch":
        from keras_kd.backends.torch import TorchSteps

        return TorchSteps
    return UnsupportedBackend
