"""One progress bar for a whole `fit`, advanced once per epoch.

`fit(verbose=1)` draws a new bar for every epoch, so a 120-epoch run prints
120 bars. `EpochProgressBar` draws one `keras.utils.Progbar` over the epochs
instead, showing the latest epoch's logs (not averages over epochs); use it
with `fit(verbose=0)`:

```python
model.fit(x, y, epochs=120, verbose=0,
          callbacks=[keras_kd.tools.progress.EpochProgressBar(["loss", "accuracy"])])
```
"""

import keras


class EpochProgressBar(keras.callbacks.Callback):
    """A single progress bar over the epochs of one `fit`.

    Args:
        metrics: names of the epoch logs to show (each as its latest value),
            in this order; a name missing from the logs is skipped. None
            shows every log.
        width: the bar's width in characters.
    """

    def __init__(self, metrics=None, width=30):
        super().__init__()
        self.metrics = None if metrics is None else list(metrics)
        self.width = width
        self._bar = None
        self._epochs = None

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs")
        # Made when training starts, not when the first epoch ends: the
        # bar's clock then times the first epoch (its time per epoch is that
        # epoch's duration; later ones leave it out, as Keras's step bars
        # leave out the first step). Every log is shown as it is
        # (`stateless_metrics=()`: none is averaged over epochs).
        self._bar = keras.utils.Progbar(
            target=self._epochs, width=self.width, unit_name="epoch", stateless_metrics=(),
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        names = list(logs) if self.metrics is None else [m for m in self.metrics if m in logs]
        values = [(name, float(logs[name])) for name in names]
        self._bar.update(epoch + 1, values=values)

    def on_train_end(self, logs=None):
        # A run that stops early (EarlyStopping, an error in a later epoch)
        # still ends its line.
        if self._bar is not None and self._bar._seen_so_far != self._epochs:
            self._bar.update(self._bar._seen_so_far, finalize=True)
