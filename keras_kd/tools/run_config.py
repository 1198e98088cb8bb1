"""Runs a validated config (`keras_kd.tools.config`): build, train, evaluate, export.

`run(config)` is what `keras-kd distill CONFIG` does:

1. refuses an `output_dir` that holds a run of a different config, and export
   paths that exist (unless `overwrite=True`); a finished run of the same
   config is reported as done, not retrained;
2. loads the data (`keras_kd.datasets.load`, shuffled with `seed`, CIFAR
   augmentation and normalization as configured), the teacher and the
   student (`.keras` file, zoo name or `module:function`);
3. trains a `Distiller` (or the student alone when `teacher` is null) with
   Keras progress bars, `TensorBoard(output_dir/logs)` and
   `BackupAndRestore(output_dir/backup)`, so re-running the same command
   after an interruption resumes from the last finished epoch;
4. evaluates on the test split, writes `output_dir/results.json` and exports
   the student.

Tests and benchmarks can inject data and models:

```python
from keras_kd.tools import config
from keras_kd.tools import run_config
cfg = config.load("recipes/cifar100/resnet32x4_resnet8x4_kd.yaml", check_files=False)
results = run_config.run(cfg, train_data=(x, y), test_data=(x, y),
                         teacher_model=keras_kd.zoo.get("resnet32x4"),
                         steps_per_epoch=2, epochs=1, export=False)
```
"""

import contextlib
import inspect
import json
import math
import os
import shutil
import time

from keras_kd.tools import config as config_lib

RESULTS = "results.json"
CONFIG_COPY = "config.yaml"


def _log(verbose, message):
    if verbose:
        print(message, flush=True)


# ----------------------------------------------------------------------------
# Data.

def _pipeline(source, ds, training, seed):
    """Batched tf.data pipeline from arrays or an unbatched dataset."""
    import tensorflow as tf

    if isinstance(source, tuple):
        source = tf.data.Dataset.from_tensor_slices(
            (tf.cast(source[0], tf.float32), tf.cast(source[1], tf.int32)))
    if training and ds["shuffle_buffer"]:
        source = source.shuffle(ds["shuffle_buffer"], seed=seed, reshuffle_each_iteration=True)
    if training and ds["augment"] == "cifar":
        source = source.map(cifar_augment, num_parallel_calls=tf.data.AUTOTUNE)
    if ds["normalize"]:
        mean = tf.constant(ds["normalize"]["mean"], tf.float32)
        std = tf.constant(ds["normalize"]["std"], tf.float32)
        source = source.map(lambda x, y: ((x - mean) / std, y),
                            num_parallel_calls=tf.data.AUTOTUNE)
    return source.batch(ds["batch_size"]).prefetch(tf.data.AUTOTUNE)


def cifar_augment(image, label):
    """The RepDistiller/CRD augmentation: pad 4 pixels with zeros, take a
    random crop of the original size, flip left-right with probability ½."""
    import tensorflow as tf

    shape = tf.shape(image)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    image = tf.image.random_crop(padded, shape)
    return tf.image.random_flip_left_right(image), label


def _data(cfg, train_data, test_data):
    from keras_kd import datasets

    ds = cfg["dataset"]
    out = []
    for given, split, training in ((train_data, ds["train_split"], True),
                                   (test_data, ds["test_split"], False)):
        if given is None:
            given = datasets.load(ds["name"], split, data_dir=ds["data_dir"])
        if isinstance(given, (tuple, list)):
            given = tuple(given)
        elif training and _is_batched(given):
            out.append(given)  # a ready pipeline: used as is
            continue
        out.append(_pipeline(given, ds, training, cfg["seed"]))
    return out


def _is_batched(dataset):
    spec = dataset.element_spec
    first = spec[0] if isinstance(spec, tuple) else spec
    return first.shape.rank is not None and first.shape.rank >= 1 and first.shape[0] is None


def _steps(dataset):
    import tensorflow as tf

    count = int(dataset.cardinality())
    if count == tf.data.INFINITE_CARDINALITY:
        raise ValueError("dataset: the training data is infinite; cannot count an epoch")
    if count < 0:
        count = sum(1 for _ in dataset)
    if count == 0:
        raise ValueError("dataset: the training split is empty")
    return count


def _shape_and_classes(cfg, train, teacher):
    from keras_kd import datasets

    ds = cfg["dataset"]
    shape = ds["input_shape"] or tuple(train.element_spec[0].shape[1:])
    classes = ds["num_classes"]
    if classes is None:
        try:
            classes = datasets.info(ds["name"])["num_classes"]
        except ValueError:
            classes = None
    if classes is None and teacher is not None and teacher.outputs:
        classes = int(teacher.outputs[0].shape[-1])
    if classes is None:
        try:
            import tensorflow_datasets as tfds

            classes = tfds.builder(ds["name"], data_dir=ds["data_dir"]).info.features[
                "label"].num_classes
        except Exception:
            raise ValueError(
                f"dataset.num_classes: cannot tell how many classes '{ds['name']}' has; "
                "set dataset.num_classes") from None
    return tuple(int(d) for d in shape), int(classes)


# ----------------------------------------------------------------------------
# Models, terms, optimizer.

def build_model(spec, input_shape, num_classes, search_path=()):
    """A model from a `.keras` path, a zoo name or `module:function`.

    A function is called with `input_shape=` and `num_classes=` when its
    signature takes them (or **kwargs), else with no arguments.
    """
    import keras

    from keras_kd import zoo

    kind = config_lib.model_kind(spec)
    if kind == "keras":
        return keras.saving.load_model(spec)
    if kind == "zoo":
        return zoo.get(spec, input_shape=input_shape, num_classes=num_classes)
    function = config_lib.import_function(spec, search_path)
    params = inspect.signature(function).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in (("input_shape", input_shape), ("num_classes", num_classes))
              if takes_all or k in params}
    model = function(**kwargs)
    if not isinstance(model, keras.Model):
        raise TypeError(f"'{spec}' returned {type(model).__name__}, not a keras.Model")
    return model


def _weight_schedule(raw, weight):
    from keras_kd.regimes import schedules

    if raw is None:
        return None
    if raw["type"] == "constant":
        return schedules.Constant(weight)
    if raw["type"] == "linear_warmup":
        return schedules.LinearWarmup(weight, raw["warmup_epochs"], raw.get("start", 0.0) * weight)
    return schedules.Piecewise(raw["boundaries_epochs"], [f * weight for f in raw["factors"]])


def build_terms(cfg, teacher, student=None):
    """`(terms, {term name: schedule}, callbacks)` from `method` or `terms`."""
    from keras_kd import zoo
    from keras_kd.zoo import recipes as methods

    if cfg["method"] is not None:
        recipe = methods.recipe(cfg["method"], cfg["epochs"], teacher=teacher, student=student)
        return recipe.terms, {}, list(recipe.callbacks), recipe.student_loss_weight
    terms, scheduled = [], {}
    for i, raw in enumerate(cfg["terms"]):
        kwargs = {k: v for k, v in raw.items() if k not in ("type", "schedule")}
        if kwargs.get("bn_layers") == "auto":
            kwargs["bn_layers"] = zoo.overhaul_bn_layers(teacher, tuple(kwargs["teacher_layers"]))
        if raw["type"] == "FSP":
            kwargs["pairs"] = [tuple(p) if isinstance(p, list) else p for p in kwargs["pairs"]]
        term = config_lib.term_class(raw["type"])(**kwargs)
        if raw.get("schedule"):
            scheduled[term.name] = _weight_schedule(raw["schedule"], term.weight)
        terms.append(term)
    return terms, scheduled, [], cfg["student_loss_weight"]


def build_optimizer(opt, steps_per_epoch, epochs):
    """The Keras optimizer; epoch boundaries become steps with the real
    `steps_per_epoch` (a boundary is the first epoch with the new rate)."""
    import keras

    lr = opt["learning_rate"]
    schedule = opt["schedule"]
    if schedule and schedule["type"] == "piecewise":
        bounds = schedule["boundaries_epochs"]
        if "factors" in schedule:
            values = [lr * f for f in schedule["factors"]]
        else:
            values = [lr * schedule["factor"] ** i for i in range(len(bounds) + 1)]
        # PiecewiseConstantDecay keeps the old value AT a boundary step; the
        # first step of epoch b is optimizer.iterations == b * steps.
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            [b * steps_per_epoch - 1 for b in bounds], values)
    elif schedule and schedule["type"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=epochs * steps_per_epoch,
            alpha=schedule.get("min_learning_rate", 0.0) / lr)
    decoupled = opt["weight_decay"] if opt["weight_decay_mode"] == "decoupled" else None
    decoupled = decoupled or None
    if opt["name"] == "sgd":
        return keras.optimizers.SGD(lr, momentum=opt["momentum"], nesterov=opt["nesterov"],
                                    weight_decay=decoupled)
    if opt["name"] == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=decoupled or 0.0)
    return keras.optimizers.Adam(lr, weight_decay=decoupled)


def add_coupled_weight_decay(model, weight_decay):
    """PyTorch-style (coupled) weight decay: the gradient of every trainable
    variable gets `weight_decay · w` added, through an L2 penalty
    `weight_decay / 2 · Σ w²` on each variable without a regularizer (it
    counts in the logged loss; exported models do not carry it)."""
    import keras

    if not weight_decay:
        return
    penalty = keras.regularizers.L2(weight_decay / 2.0)
    for variable in model.trainable_variables:
        if variable.regularizer is None:
            variable.regularizer = penalty


# ----------------------------------------------------------------------------
# Output directory bookkeeping.

def export_paths(cfg):
    """{format: path} of the student exports."""
    stem = cfg["export"]["path"]
    suffix = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite"}
    return {fmt: stem + suffix[fmt] for fmt in cfg["export"]["formats"]}


def _prepare_output(cfg, digest, overwrite, export, verbose):
    """Returns the finished results when the same run is already done."""
    out = cfg["output_dir"]
    results_path = os.path.join(out, RESULTS)
    copy_path = os.path.join(out, CONFIG_COPY)
    previous = None
    if os.path.isfile(copy_path):
        previous = config_lib.config_hash(config_lib.read(copy_path))
    if overwrite:
        for name in (RESULTS, "backup", "logs"):
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    else:
        if previous is not None and previous != digest:
            raise FileExistsError(
                f"output_dir: '{out}' holds a run of a different config (hash {previous}, this "
                f"one {digest}). Choose another output_dir (--output-dir) or pass --overwrite "
                "to discard it.")
        if os.path.isfile(results_path):
            with open(results_path) as handle:
                results = json.load(handle)
            print(f"Already finished: {results_path} (test accuracy "
                 f"{results.get('test_accuracy')}). Nothing to do; --overwrite retrains.")
            return results
        if export:
            existing = [p for p in export_paths(cfg).values() if os.path.exists(p)]
            if existing:
                raise FileExistsError(
                    f"export.path: {', '.join(existing)} already exist(s) and would be "
                    "replaced by this run's student. Pass --overwrite to replace, or set "
                    "export.path (--set export.path=...) elsewhere.")
    os.makedirs(out, exist_ok=True)
    config_lib.dump(cfg, copy_path)
    return None


def _resumed_epoch(backup_dir):
    """Epochs finished before the interruption (BackupAndRestore's record)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        return json.load(handle).get("epoch")


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


# ----------------------------------------------------------------------------

def run(cfg, train_data=None, test_data=None, teacher_model=None, student_model=None,
        steps_per_epoch=None, epochs=None, callbacks=(), overwrite=False, export=True,
        backup=True, run_eagerly=False, verbose=1, search_path=()):
    """Trains the run `cfg` describes (a dict from `keras_kd.tools.config.load`).

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
        `history` (per-epoch logs), `exports`, `seconds`.
    """
    import keras
    import tensorflow as tf

    from keras_kd.regimes import schedules
    from keras_kd.distiller import Distiller

    cfg = dict(cfg)
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    digest = config_lib.config_hash(cfg)
    done = _prepare_output(cfg, digest, overwrite, export, verbose)
    if done is not None:
        return done
    out = cfg["output_dir"]
    backup_dir = os.path.join(out, "backup")
    resumed = _resumed_epoch(backup_dir) if backup else None
    if resumed is not None:
        _log(verbose, f"Resuming from {backup_dir}: {resumed} of {cfg['epochs']} epochs "
             "already done.")
    keras.utils.set_random_seed(cfg["seed"])
    start = time.time()
    train, test = _data(cfg, train_data, test_data)
    steps = steps_per_epoch or _steps(train)
    strategy = (tf.distribute.MirroredStrategy() if cfg["strategy"] == "mirrored"
                else tf.distribute.get_strategy())
    with _policy(cfg["mixed_precision"]), strategy.scope():
        teacher = teacher_model
        if teacher is None and cfg["teacher"] is not None:
            teacher = build_model(cfg["teacher"], None, None, search_path)
            if config_lib.model_kind(cfg["teacher"]) == "zoo":
                _log(verbose, f"Warning: teacher '{cfg['teacher']}' is a zoo architecture "
                     "with random weights.")
        input_shape, classes = _shape_and_classes(cfg, train, teacher)
        student = student_model or build_model(cfg["student"], input_shape, classes, search_path)
        opt = cfg["optimizer"]
        if opt["weight_decay_mode"] == "coupled":
            add_coupled_weight_decay(student, opt["weight_decay"])
        optimizer = build_optimizer(opt, steps, cfg["epochs"])
        built_callbacks = []
        if backup:
            built_callbacks.append(keras.callbacks.BackupAndRestore(backup_dir))
        compile_args = dict(optimizer=optimizer, metrics=["accuracy"],
                            jit_compile=cfg["jit_compile"], run_eagerly=run_eagerly)
        if teacher is None:
            model = student
            model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          **compile_args)
        else:
            try:
                terms, scheduled, extra, slw = build_terms(cfg, teacher, student)
                model = Distiller(teacher, student, losses=terms, student_loss_weight=slw)
            except (TypeError, ValueError) as error:
                raise config_lib.ConfigError(
                    [f"terms: building the distiller failed: {error}"]) from error
            if cfg.get("teacher_cache"):  # docs/cache.md: cached views replace the live teacher
                from keras_kd.tools.cache_config import cached_train_data

                train = cached_train_data(cfg, train_data, teacher, terms)
            if cfg["student_loss_schedule"]:
                scheduled["student_loss"] = _weight_schedule(cfg["student_loss_schedule"], slw)
            if scheduled:
                built_callbacks.append(schedules.LossWeightScheduler(scheduled))
            built_callbacks.extend(extra)
            model.compile(loss="sparse_categorical_crossentropy", **compile_args)
        built_callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs")))
        history = model.fit(train, epochs=cfg["epochs"], steps_per_epoch=steps_per_epoch, shuffle=False,
                            callbacks=built_callbacks + list(callbacks), verbose=verbose)
        scores = student_scores(student, test, run_eagerly, verbose)
    results = {
        "test_accuracy": scores["accuracy"],
        "test_loss": scores["loss"],
        "params": int(student.count_params()),
        "epochs": cfg["epochs"],
        "config_hash": digest,
        "resumed_after_epochs": resumed,
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
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
    with open(os.path.join(out, RESULTS), "w") as handle:
        json.dump(results, handle, indent=2, default=_json_default)
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


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
