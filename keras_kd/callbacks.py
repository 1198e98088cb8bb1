"""Callbacks: what a distillation run shows in TensorBoard beyond scalars."""

import os

import keras
import numpy as np
from keras import ops

from keras_kd.losses.attention_transfer import AttentionTransfer, attention_map
from keras_kd.losses.fsp import FSP
from keras_kd.regimes.self_distillation import SelfDistillation  # noqa: F401
from keras_kd.regimes.stages import Stages  # noqa: F401


def _to_image(matrix):
    """(h, w) array -> (1, h, w, 1) in [0, 1], min-max scaled per image."""
    matrix = np.asarray(matrix, dtype=np.float32)
    low, high = float(matrix.min()), float(matrix.max())
    scaled = (matrix - low) / (high - low) if high > low else np.zeros_like(matrix)
    return scaled[None, :, :, None]


class FeatureImages(keras.callbacks.Callback):
    """Writes teacher and student FSP matrices and attention maps as images.

    Every `every_n_epochs` epochs (and before the first), for a fixed batch
    `x`, the callback runs the distiller's teacher and student views once and
    writes, under `log_dir/images`:

    - for each `FSP` term and pair k: `fsp/<term>/pair<k>/teacher` and
      `.../student`, the batch-mean FSP matrix (C1 × C2) each, so the student's
      flow can be watched converging to the teacher's (the teacher image shows
      the shuffled target when the term has a `shuffle_seed`);
    - for each `AttentionTransfer` term and pair k: `attention/<term>/pair<k>/
      teacher` and `.../student`, the attention map of the first
      `max_images` samples, reshaped to the feature map's h × w.

    Each image is min-max scaled on its own. Open with
    `tensorboard --logdir LOG_DIR` (Images tab).

    Args:
        log_dir: TensorBoard log directory (the same as `keras.callbacks.
            TensorBoard`'s is fine: images go to its `images` subfolder).
        x: a batch of inputs (numpy or tensor) to render.
        every_n_epochs: how often to write.
        max_images: attention maps per pair and epoch.
    """

    def __init__(self, log_dir, x, every_n_epochs=1, max_images=3):
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}.")
        self.log_dir = os.path.join(os.fspath(log_dir), "images")
        self.x = x
        self.every_n_epochs = int(every_n_epochs)
        self.max_images = int(max_images)
        self._writer = None

    def _terms(self):
        terms = getattr(self.model, "distillation_losses", None)
        if terms is None:
            raise TypeError(
                "FeatureImages must be passed to keras_kd.Distiller.fit; got a "
                f"{type(self.model).__name__}."
            )
        return [t for t in terms if isinstance(t, (FSP, AttentionTransfer))]

    def on_train_begin(self, logs=None):
        terms = self._terms()
        if not terms:
            raise ValueError(
                "FeatureImages draws FSP matrices and attention maps, but the "
                "distiller has no FSP or AttentionTransfer term."
            )
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._write(step=0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self._write(step=epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def images(self):
        """`{tag: (h, w) array}` for the current weights (also for tests)."""
        teacher = self.model.teacher_view(self.x, training=False)
        student = self.model.student_view(self.x, training=False)
        images = {}
        for term in self._terms():
            if isinstance(term, FSP):
                for k, (g_t, g_s) in enumerate(term.matrices(teacher, student)):
                    images[f"fsp/{term.name}/pair{k}/teacher"] = ops.convert_to_numpy(ops.mean(g_t, axis=0))
                    images[f"fsp/{term.name}/pair{k}/student"] = ops.convert_to_numpy(ops.mean(g_s, axis=0))
            else:
                pairs = zip(term.teacher_layers, term.student_layers)
                for k, (t_tap, s_tap) in enumerate(pairs):
                    for role, view, tap in (("teacher", teacher, t_tap), ("student", student, s_tap)):
                        features = view[tap]
                        h, w = int(features.shape[1]), int(features.shape[2])
                        maps = ops.convert_to_numpy(attention_map(features, term.p))
                        for i in range(min(self.max_images, maps.shape[0])):
                            images[f"attention/{term.name}/pair{k}/{role}/{i}"] = maps[i].reshape(h, w)
        return images

    def _write(self, step):
        import tensorflow as tf

        with self._writer.as_default():
            for tag, matrix in self.images().items():
                tf.summary.image(tag, _to_image(matrix), step=step)
        self._writer.flush()


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first batch whose loss parts are NaN or Inf,
    naming the part(s) that went non-finite.

    Keras's `TerminateOnNaN` looks at the total only; this callback reads
    every part the Distiller logs (`student_loss`, each term's metric) and
    raises a `FloatingPointError` such as "the term 'hint' became nan at
    epoch 3, batch 17", so the cause is visible. Files written before (e.g.
    by `ModelCheckpoint` at the end of the previous epoch) are left as they
    are: the last good checkpoint is kept.

    It reads the logs of every batch, which makes Keras synchronise each
    step; use it while developing a recipe or when a run diverges.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not logs:
            return
        terms = [t.metric_name for t in getattr(self.model, "distillation_losses", [])]
        parts = ["student_loss"] + terms
        bad = []
        for name in parts + ["loss"]:
            if name in logs and not np.isfinite(float(logs[name])):
                bad.append((name, float(logs[name])))
        if not bad:
            return
        self.model.stop_training = True
        culprits = [(n, v) for n, v in bad if n in parts] or bad
        described = ", ".join(
            f"{'the student loss' if n == 'student_loss' else ('the term ' + repr(n) if n in terms else repr(n))} "
            f"became {v}" for n, v in culprits
        )
        raise FloatingPointError(
            f"Training stopped: {described} at epoch {self._epoch + 1}, batch {batch + 1}. "
            "Check the inputs and the teacher's outputs for NaN/Inf, lower the "
            "learning rate or that term's weight. Checkpoints written before "
            "this batch are untouched."
        )
