"""Runs a validated config (`keras_kd.tools.config.validate`): build, train, evaluate, export.

`run(config)` is what `keras-kd distill CONFIG` does:

1. refuses an `output_dir` that holds a run of a different config, and export
   paths that exist (unless `overwrite=True`); a finished run of the same
   config is reported as done, not retrained;
2. loads the data (`keras_kd.datasets.load`, shuffled with `seed`, CIFAR
   augmentation and normalization as configured; a validation set when
   `dataset.validation_split` carves one out of the training split or
   `dataset.validation` names one), the teacher and the student (`.keras`
   file, zoo name or `module:function`);
3. trains a `Distiller` (or the student alone when `teacher` is null) with
   Keras progress bars, `TensorBoard(output_dir/logs)` (the validation
   metrics per epoch under `logs/validation`, the run's settings in the
   HParams dashboard: `hparams.py`) and `BackupAndRestore(output_dir/backup)`,
   so re-running the same command after an interruption resumes from the
   last finished epoch;
4. evaluates on the test split, writes `output_dir/results.json` and exports
   the student.

Its parts live beside it: `data` (the tf.data pipelines, the validation
carve), `builders` (models, terms and optimizer from the config), `hparams`
(the HParams summary) and `output` (the output directory: config copy,
results.json, export paths, resuming).

Tests and benchmarks can inject data and models:

```python
from keras_kd.tools.config import validate as config
from keras_kd.tools.run import runner as run_config
cfg = config.load("recipes/cifar100/resnet32x4_resnet8x4_kd.yaml", check_files=False)
results = run_config.run(cfg, train_data=(x, y), test_data=(x, y),
                         teacher_model=keras_kd.zoo.get("resnet32x4"),
                         steps_per_epoch=2, epochs=1, export=False)
```
"""

import contextlib
import os
import time

from keras_kd.tools.config import validate as config_lib
from keras_kd.tools.run.builders import (
    add_coupled_weight_decay,
    build_model,
    build_optimizer,
    build_terms,
    weight_schedule,
)
from keras_kd.tools.run.data import (
    cifar_augment,
    count_samples,
    count_steps,
    input_shape_and_classes,
    load_run_data,
)
from keras_kd.tools.run.hparams import write_hparams
from keras_kd.tools.run.output import (
    CONFIG_COPY,
    RESULTS,
    export_paths,
    prepare_output_dir,
    resumed_epoch,
    write_results,
)


def _first_batch(train):
    """`(x, y)` of the first training batch: the gradient-balance rules of
    the `at` and `overhaul` recipes calibrate on it. None on a resumed run:
    the backup restores the weights the first run set."""
    for batch in train.take(1):
        if isinstance(batch, (tuple, list)) and len(batch) >= 2:
            return batch[0], batch[1]
    return None


def _log(verbose, message):
    if verbose:
        print(message, flush=True)


@contextlib.contextmanager
def _policy(mixed):
    import keras

    previous = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def run(cfg, train_data=None, test_data=None, teacher_model=None, student_model=None,
        steps_per_epoch=None, epochs=None, callbacks=(), overwrite=False, export=True,
        backup=True, run_eagerly=False, verbose=1, search_path=()):
    """Trains the run `cfg` describes (a dict from `keras_kd.tools.config.validate.load`).

    Args:
        cfg: the validated config.
        train_data, test_data: replace the configured dataset: `(x, y)` arrays
            (shuffled, augmented, normalized and batched as configured) or a
            `tf.data.Dataset` (unbatched: the same; already batched train
            data: used as is).
        teacher_model, student_model: ready `keras.Model`s instead of the
            configured ones (e.g. a zoo architecture with random weights).
        steps_per_epoch: train this many batches per epoch (default: the
            whole training split); learning-rate boundaries use it.
        epochs: override `cfg["epochs"]` (the config hash changes with it).
        callbacks: extra Keras callbacks, after the built-in ones.
        overwrite: discard a previous run in `output_dir` and replace exports.
        export: write the exports (`cfg["export"]`).
        backup: use `BackupAndRestore(output_dir/backup)` (resumable runs).
        run_eagerly: Keras's `run_eagerly` (fast smoke tests, no tracing).
        verbose: 0 silent, 1 progress bars.

    Returns:
        The results dict also written to `output_dir/results.json`:
        `test_accuracy`, `test_loss`, `params`, `epochs`, `config_hash`,
        `history` (per-epoch logs; `val_*` ones with a validation set),
        `validation_examples`, `exports`, `seconds`.
    """
    import keras
    import tensorflow as tf

    from keras_kd.regimes import schedules
    from keras_kd.distiller import Distiller

    cfg = dict(cfg)
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    digest = config_lib.config_hash(cfg)
    done = prepare_output_dir(cfg, digest, overwrite, export, verbose)
    if done is not None:
        return done
    out = cfg["output_dir"]
    backup_dir = os.path.join(out, "backup")
    resumed = resumed_epoch(backup_dir) if backup else None
    if resumed is not None:
        _log(verbose, f"Resuming from {backup_dir}: {resumed} of {cfg['epochs']} epochs "
             "already done.")
    keras.utils.set_random_seed(cfg["seed"])
    start = time.time()
    train, validation, test, train_source = load_run_data(cfg, train_data, test_data)
    log_dir = os.path.join(out, "logs")
    write_hparams(log_dir, cfg, digest)
    steps = steps_per_epoch or count_steps(train)
    strategy = (tf.distribute.MirroredStrategy() if cfg["strategy"] == "mirrored"
                else tf.distribute.get_strategy())
    with _policy(cfg["mixed_precision"]), strategy.scope():
        teacher = teacher_model
        if teacher is None and cfg["teacher"] is not None:
            teacher = build_model(cfg["teacher"], None, None, search_path)
            if config_lib.model_kind(cfg["teacher"]) == "zoo":
                _log(verbose, f"Warning: teacher '{cfg['teacher']}' is a zoo architecture "
                     "with random weights.")
        input_shape, classes = input_shape_and_classes(cfg, train, teacher)
        student = student_model or build_model(cfg["student"], input_shape, classes, search_path)
        opt = cfg["optimizer"]
        if opt["weight_decay_mode"] == "coupled":
            add_coupled_weight_decay(student, opt["weight_decay"])
        built_callbacks = []
        if backup:
            built_callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
        compile_args = dict(metrics=["accuracy"], jit_compile=cfg["jit_compile"],
                            run_eagerly=run_eagerly)
        fit_epochs = cfg["epochs"]
        if teacher is None:
            model = student
            model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          optimizer=build_optimizer(opt, steps, fit_epochs), **compile_args)
        else:
            try:
                terms, scheduled, extra, slw, fit_epochs = build_terms(
                    cfg, teacher, student,
                    sample=None if resumed is not None or cfg["method"] is None
                    else _first_batch(train))
                model = Distiller(teacher, student, losses=terms, student_loss_weight=slw)
            except (TypeError, ValueError) as error:
                raise config_lib.ConfigError(
                    [f"terms: building the distiller failed: {error}"]) from error
            if cfg.get("teacher_cache"):  # docs/cache.md: cached views replace the live teacher
                from keras_kd.tools.run.cache import cached_train_data

                train = cached_train_data(cfg, train_source, teacher, terms)
            if cfg["student_loss_schedule"]:
                scheduled["student_loss"] = weight_schedule(cfg["student_loss_schedule"], slw)
            if scheduled:
                built_callbacks.append(schedules.LossWeightScheduler(scheduled))
            built_callbacks.extend(extra)
            # fit_epochs: a recipe may add epochs ahead of the run (FSP's
            # initialisation stage); the learning-rate schedule spans them all.
            model.compile(loss="sparse_categorical_crossentropy",
                          optimizer=build_optimizer(opt, steps, fit_epochs), **compile_args)
        built_callbacks.append(keras.callbacks.TensorBoard(log_dir))
        history = model.fit(train, epochs=fit_epochs, steps_per_epoch=steps_per_epoch,
                            shuffle=False, validation_data=validation,
                            callbacks=built_callbacks + list(callbacks), verbose=verbose)
        scores = student_scores(student, test, run_eagerly, verbose)
    results = {
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "params": int(student.count_params()),
        "epochs": cfg["epochs"],
        "fit_epochs": fit_epochs,
        "config_hash": digest,
        "resumed_after_epochs": resumed,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "validation_examples": None if validation is None else count_samples(validation),
        "exports": {},
        "seconds": round(time.time() - start, 1),
    }
    if export:
        from keras_kd.export import export_model

        formats = {"keras": "keras", "savedmodel": "tf_saved_model", "tflite": "tflite"}
        for fmt, path in export_paths(cfg).items():
            export_model(student, path, format=formats[fmt], overwrite=overwrite)
            results["exports"][fmt] = path
            _log(verbose, f"Exported the student ({fmt}) to {path}")
    write_results(out, results)
    _log(verbose, f"Test accuracy {scores['accuracy']:.4f}; results in "
         f"{os.path.join(out, RESULTS)}")
    return results


def student_scores(student, test, run_eagerly=False, verbose=0):
    """{'loss', 'accuracy'} of the student alone on the test data."""
    import keras

    clone = keras.Model(student.inputs, student.outputs) if student.inputs else student
    clone.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], run_eagerly=run_eagerly)
    scores = clone.evaluate(test, return_dict=True, verbose=0)
    return {k: float(scores[k]) for k in ("loss", "accuracy")}


__all__ = [
    "CONFIG_COPY",
    "RESULTS",
    "add_coupled_weight_decay",
    "build_model",
    "build_optimizer",
    "build_terms",
    "cifar_augment",
    "export_paths",
    "run",
    "student_scores",
]
