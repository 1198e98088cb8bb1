"""One training run of `keras-kd bench`: a student, a method, a seed.

Every run of a benchmark reads the same training arrays in the same order
(a `tf.data` shuffle seeded by the run's seed), with the same optimizer
and epochs. The logit methods (`LOGIT_METHODS`) read the teacher's logits
from a per-sample teacher cache computed once per benchmark
(`keras_kd.teachers.caching.teacher_cache.build`), as the docs tell users to: a frozen
teacher's logits never change, so recomputing them every step only costs
time. The cached pipeline shuffles with the same seed, so it sees the same
order as the scratch run it is paired with.
"""

import datetime
import os
import time

import keras
import numpy as np

# Methods that read only the teacher's logits: a teacher cache serves them.
LOGIT_METHODS = ("kd", "kd_ls", "dist", "dkd", "dkd_ls", "nkd", "mlkd", "mlkd_ls",
                 "wttm")  # = keras_kd.zoo.recipes.LOGIT_METHODS


def build_model(name, dataset):
    """A fresh model for a zoo name (plus the bench-only digits students)."""
    from keras_kd import datasets, zoo

    info = datasets.info(dataset)
    shape, classes = info["input_shape"], info["num_classes"]
    if name in ("digits_thin_student", "digits_matched_student"):
        widths = (8, 16, 32) if name == "digits_thin_student" else (32, 64, 128)
        return zoo.cnn(shape, classes, widths=widths, convs_per_stage=1,
                       pool_after=(2,), name=name)
    return zoo.get(name, input_shape=shape, num_classes=classes)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of every epoch's training steps, for the training-step time
    (an epoch's validation pass, which starts with `on_test_begin`, is left out)."""

    async_safe = True  # counts steps only: no per-step sync of the logs

    def on_train_begin(self, logs=None):
        self.seconds, self.steps = [], 0
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._end, self._steps = time.perf_counter(), None, 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._start is not None and self._end is None:
            self._end = time.perf_counter()  # the epoch's validation begins

    def on_epoch_end(self, epoch, logs=None):
        end = self._end if self._end is not None else time.perf_counter()
        self.seconds.append(end - self._start)
        self.steps = self._steps
        self._start = None

    def step_ms(self):
        """Median epoch time ÷ steps, leaving out the first (tracing) epoch."""
        timed = self.seconds[1:] or self.seconds
        return float(np.median(timed) / max(1, self.steps) * 1000.0)


def student_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy(model, x, y, batch_size=512):
    # Direct calls: `predict` would retrace for every new model in a sweep.
    hits = 0
    for start in range(0, len(y), batch_size):
        logits = keras.ops.convert_to_numpy(model(x[start:start + batch_size], training=False))
        hits += int((np.argmax(logits, -1) == y[start:start + batch_size]).sum())
    return hits / len(y)


def adam_cosine(learning_rate, epochs, examples, batch_size):
    """Adam whose rate decays to 0 by the last step (cosine).

    Decaying to 0 lets the weights settle, so BatchNormalization's moving
    statistics catch up with them before the model is evaluated.
    """
    steps = max(1, epochs * -(-examples // batch_size))
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))


def fit_verbose(verbose):
    return {0: 0, 1: 2}.get(verbose, 1)


def shuffled_batches(x, y, batch_size, seed):
    """The training pipeline of every run: per-sample shuffle seeded by `seed`,
    in the order a teacher cache's `dataset(shuffle=True, seed=seed)` uses."""
    from keras_kd.teachers.caching.replay import shuffled_arrays

    return shuffled_arrays((x, y), batch_size, seed)


def logit_cache(teacher, x, y, batch_size=512):
    """The teacher's logits on `(x, y)`, once, in memory: a `TeacherCache`."""
    import tensorflow as tf

    from keras_kd.teachers.caching.teacher_cache import build

    start = time.perf_counter()
    built = build(teacher, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size))
    built.seconds = time.perf_counter() - start
    return built


def train_one(method, student_name, seed, teacher, pair, data, settings, output_dir, verbose,
              overrides=None, cache=None, validation=None):
    """Trains one student with one method and returns its result row.

    `overrides` replace the recipe's rules (`keras_kd.zoo.recipes.recipe(**overrides)`).
    `cache` (from `logit_cache`, on the same training arrays) serves the
    teacher's logits to the logit methods; without it the teacher runs live.
    `validation` (`(x_val, y_val)`) is scored every epoch (Keras's
    `validation_data`); the row gets the last epoch's `val_accuracy`.
    """
    from keras_kd.distiller import Distiller
    from keras_kd.tools.timing import latency_ms
    from keras_kd.zoo import recipes as methods

    (x_train, y_train), (x_test, y_test) = data
    epochs, batch_size = settings["epochs"], settings["batch_size"]
    keras.utils.set_random_seed(seed)
    student = build_model(student_name, pair.dataset)
    # The first training batch calibrates the gradient-balanced recipes.
    # --temperature is KD's and DKD's; DIST and NKD keep their authors' T.
    temperature = None if method in methods.OWN_TEMPERATURE else settings["temperature"]
    overrides = dict(overrides or {})
    temperature = overrides.pop("temperature", temperature)
    plan = methods.recipe(method, epochs, temperature=temperature,
                          teacher=teacher, student=student,
                          sample=(x_train[:256], y_train[:256]), **overrides)
    timer = EpochTimer()
    log_dir = os.path.join(output_dir, "tensorboard", method, student_name, f"seed{seed}")
    callbacks = [timer, keras.callbacks.TensorBoard(log_dir)] + list(plan.callbacks)
    # A recipe may add epochs ahead of the run (FSP's initialisation stage).
    epochs = plan.epochs
    optimizer = adam_cosine(settings["learning_rate"], epochs, len(y_train), batch_size)
    cached = cache is not None and method in LOGIT_METHODS
    if cached and cache.num_samples != len(y_train):
        raise ValueError(f"The teacher cache holds {cache.num_samples} samples but the run "
                         f"trains on {len(y_train)}; build it on the same training arrays.")
    if method == "scratch":
        model = student
    else:
        model = Distiller(teacher, student, losses=plan.terms,
                          student_loss_weight=plan.student_loss_weight)
    model.compile(optimizer=optimizer, loss=student_loss(), metrics=["accuracy"])
    if cached:
        train = cache.dataset(batch_size, shuffle=True, seed=seed)
    else:
        train = shuffled_batches(x_train, y_train, batch_size, seed)
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, shuffle=False,  # the pipeline shuffles, seeded
                        validation_data=None if validation is None else tuple(validation),
                        verbose=fit_verbose(verbose), callbacks=callbacks)
    row = {
        "method": method,
        "student": student_name,
        "seed": seed,
        "weights": plan.weights,
        "teacher_source": "cache" if cached else ("live" if method != "scratch" else None),
        "accuracy": accuracy(student, x_test, y_test),
        "params": int(student.count_params()),
        "latency_ms": latency_ms(student, x_test[:256]),
        "step_ms": timer.step_ms(),
        "train_seconds": time.perf_counter() - start,
        "epochs": epochs,
        "finished": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    if validation is not None:
        row["val_accuracy"] = float(history.history["val_accuracy"][-1])
    return row


def train_teacher(pair, data, output_dir, epochs, learning_rate, verbose):
    """Trains the pair's teacher on the full training set and saves it."""
    (x, y), _ = data
    keras.utils.set_random_seed(0)

    teacher = build_model(pair.teacher, pair.dataset)
    optimizer = adam_cosine(learning_rate, epochs, len(y), pair.batch_size)
    teacher.compile(optimizer=optimizer, loss=student_loss(), metrics=["accuracy"])
    teacher.fit(
        x, y, batch_size=pair.batch_size, epochs=epochs, shuffle=True,
        verbose=fit_verbose(verbose),
        callbacks=[keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard", "teacher"))],
    )
    path = os.path.join(output_dir, "teacher.keras")
    teacher.save(path)
    return path
