"""Run-time guards `Distiller.fit` adds: an epoch that trains nothing raises.

Keras warns "Your input ran out of data" and returns an empty history when a
dataset yields no batch (everything dropped by `filter()`, a `batch()` with
`drop_remainder=True` larger than the data, a `take(0)`); its cardinality is
unknown until it is read, so this cannot be checked before step 1.
"""

import keras

_NO_BATCHES = (
    "Check the pipeline: a filter() that drops every element, batch(..., "
    "drop_remainder=True) with a batch larger than the data, take(0) or skip() past "
    "the end, or a generator that yields nothing. `len(list(dataset.take(1)))` shows "
    "whether it yields anything."
)


class RequireBatches(keras.callbacks.Callback):
    """Raises when the first epoch of `fit`, or a validation pass, sees no batch.

    Later epochs are left to Keras (its "ran out of data" warning): they
    follow an epoch that did train.
    """

    # Its batch hook only counts and reads no logs: Keras may run it off the
    # training thread. A callback without this flag makes Keras turn every
    # step's logs into Python floats, i.e. wait for each step to finish
    # before it starts the next (about 10% of a small model's epoch on CPU).
    async_safe = True

    def __init__(self, validation_freq=None):
        super().__init__()
        self.validation_freq = validation_freq
        self._batches = 0
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if self._first_epoch and self._batches == 0:
            raise ValueError(
                f"Epoch {epoch + 1} trained 0 steps: the training data yielded no batch, "
                "so nothing was learned (Keras would return an empty history). "
                + _NO_BATCHES
            )
        self._first_epoch = False
        if self.validation_freq is not None and self._expects_validation(epoch):
            if not any(key.startswith("val_") for key in (logs or {})):
                raise ValueError(
                    f"The validation data yielded no batch at epoch {epoch + 1}, so no "
                    "val_ metrics exist. " + _NO_BATCHES
                )

    def _expects_validation(self, epoch):
        freq = self.validation_freq
        if isinstance(freq, int):
            return (epoch + 1) % freq == 0
        return epoch + 1 in freq


class RequireTestBatches(keras.callbacks.Callback):
    """Raises when `evaluate` sees no batch (Keras returns `{}` or `[]`)."""

    async_safe = True  # counts only, as RequireBatches

    def __init__(self):
        super().__init__()
        self._batches = 0

    def on_test_begin(self, logs=None):
        self._batches = 0

    def on_test_batch_end(self, batch, logs=None):
        self._batches += 1

    def on_test_end(self, logs=None):
        if self._batches == 0:
            raise ValueError(
                "evaluate() read no batch: the data yielded nothing, so there is no "
                "loss or metric to report. " + _NO_BATCHES
            )


def guard_fit(callbacks, kwargs):
    """`callbacks` plus a `RequireBatches` for this `fit(**kwargs)`."""
    callbacks = list(callbacks or [])
    has_validation = kwargs.get("validation_data") is not None or bool(
        kwargs.get("validation_split"))
    freq = kwargs.get("validation_freq", 1) if has_validation else None
    return callbacks + [RequireBatches(validation_freq=freq)]


def guard_evaluate(callbacks):
    """`callbacks` plus a `RequireTestBatches`, unless Keras's `fit` passes its
    own `CallbackList` for validation (`RequireBatches` covers that case)."""
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return callbacks
    return list(callbacks or []) + [RequireTestBatches()]
