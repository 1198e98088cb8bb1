"""The run-time guards fit adds (keras_kd.checks.guards): an epoch that trains
nothing raises, 0 epochs is a no-op, and the callbacks fit adds let Keras
dispatch batch hooks without a sync per step."""

import keras
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from keras_kd.regimes import schedules
from tests.helpers.distillers import X, Y, fit as _fit, kd_distiller as _distiller
from tests.helpers.models import tiny_cnn


def test_a_dataset_empty_after_filter_raises_instead_of_training_zero_steps():
    distiller = _distiller()
    data = tf.data.Dataset.from_tensor_slices((X, Y)).filter(lambda x, y: y > 100).batch(8)
    assert int(data.cardinality()) < 0  # unknown: cannot be seen before reading
    with pytest.raises(ValueError, match="Epoch 1 trained 0 steps.*filter\\(\\)"):
        distiller.fit(data, epochs=2, verbose=0)
    with pytest.raises(ValueError, match="evaluate\\(\\) read no batch"):
        distiller.evaluate(data, verbose=0)
    good = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8)
    with pytest.raises(ValueError, match="validation data yielded no batch"):
        distiller.fit(good, validation_data=data, epochs=1, verbose=0)


def test_zero_epochs_is_a_no_op_not_an_error():
    assert _fit(_distiller(), X, Y, epochs=0) == {}


def test_the_callbacks_fit_adds_let_keras_dispatch_batch_hooks_without_a_per_step_sync():
    # A callback overriding on_train_batch_end without `async_safe` makes
    # Keras pull every step's logs to the host (a sync per step, ~10% of a
    # small model's epoch). The guards and the default schedule must not.
    from keras_kd.checks.guards import RequireTestBatches, guard_fit

    distiller = keras_kd.Distiller(tiny_cnn(), tiny_cnn(), losses=[losses.DKD(temperature=4.0)])
    added = guard_fit(schedules.with_default_schedules(distiller, None), {"validation_data": 1})
    added.append(RequireTestBatches())
    assert any(isinstance(c, schedules.LossWeightScheduler) for c in added)
    for callback in added:
        hooks = ("on_train_batch_end", "on_test_batch_end", "on_batch_end")
        overridden = [h for h in hooks
                      if getattr(type(callback), h) is not getattr(keras.callbacks.Callback, h)]
        assert not overridden or getattr(callback, "async_safe", False), (callback, overridden)
    assert schedules.LossWeightScheduler(per_step=True).async_safe is False
