"""The Distiller's training step: one pass, the exact objective, Keras semantics."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import losses
from tests.helpers.distillers import (
    X,
    Y,
    batches as _batches,
    fit as _fit,
    kd_distiller as _distiller,
)
from tests.helpers.models import RunCounter, tiny_cnn
from tests.helpers.numpy_logits import numpy_kd, sparse_ce


def make(losses_list=None, student_loss_weight=0.5, **student_kwargs):
    teacher = tiny_cnn(16, name="teacher")
    student = tiny_cnn(8, name="student", **student_kwargs)
    losses_list = [losses.KD(temperature=4.0)] if losses_list is None else losses_list
    distiller = keras_kd.Distiller(
        teacher, student, losses=losses_list, student_loss_weight=student_loss_weight
    )
    return teacher, student, distiller


def compile_(distiller, **kwargs):
    kwargs.setdefault("optimizer", keras.optimizers.SGD(0.01))
    kwargs.setdefault("loss", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return distiller.compile(**kwargs)


def test_compile_returns_the_distiller_and_fit_chains(digits_batch):
    x, y = digits_batch
    _, _, distiller = make()
    assert compile_(distiller, metrics=["accuracy"]) is distiller
    history = compile_(distiller, metrics=["accuracy"]).fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "kd", "student_loss", "accuracy"}  # one loss column
    assert np.isfinite(history.history["loss"][0])


def test_student_runs_once_per_step_with_two_feature_terms(digits_batch):
    x, y = digits_batch
    terms = [
        losses.KD(temperature=4.0),
        losses.FeatureMSE("relu1", "relu1", adapter="auto", name="hint1"),
        losses.FeatureMSE("relu2:input", "relu2:input", adapter="auto", name="hint2"),
    ]
    _, student, distiller = make(terms, counter=True)
    compile_(distiller).fit(x, y, batch_size=8, epochs=1, verbose=0)  # 4 steps
    assert float(student.get_layer("counter").count.numpy()) == 4.0


@pytest.mark.tensorflow_only  # counts keras.distillation's passes on TF
def test_keras_own_distiller_runs_the_student_twice_for_contrast(digits_batch):
    # Why keras-kd builds single-pass views: keras.distillation with a
    # FeatureDistillation runs the student once for logits, once for features.
    x, y = digits_batch
    teacher, student = tiny_cnn(16, name="t"), tiny_cnn(16, name="s", counter=True)
    distiller = keras.distillation.Distiller(
        teacher, student,
        distillation_losses=[
            keras.distillation.LogitsDistillation(temperature=4.0),
            keras.distillation.FeatureDistillation(teacher_layer_name="relu2", student_layer_name="relu2"),
        ],
    )
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    conv_runs = RunCounter(student.get_layer("conv1"))  # the counter the methods test uses
    distiller.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert float(student.get_layer("counter").count.numpy()) == 8.0
    assert conv_runs.runs == 8.0


def test_total_is_the_documented_objective(digits_batch):
    x, y = digits_batch
    l2 = keras.regularizers.L2(0.01)
    terms = [losses.KD(temperature=3.0, weight=0.7)]
    teacher, student, distiller = make(terms, student_loss_weight=0.25, regularizer=l2)
    compile_(distiller, optimizer=keras.optimizers.SGD(0.0))  # no update
    t_logits = teacher.predict(x, verbose=0)
    # The step runs the student in training mode (BN on batch statistics).
    s_logits = keras.ops.convert_to_numpy(student(x, training=True))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    ce = sparse_ce(s_logits.astype(np.float64), y).mean()
    kd = numpy_kd(t_logits, s_logits, 3.0)
    reg = 0.01 * np.sum(np.square(student.get_layer("conv1").kernel.numpy()))
    assert logs["student_loss"] == pytest.approx(ce, rel=1e-4)
    assert logs["kd"] == pytest.approx(kd, rel=1e-4)
    assert logs["loss"] == pytest.approx(0.25 * ce + 0.7 * kd + reg, rel=1e-4)
    assert "total_loss" not in logs  # Keras's "loss" is the total: no duplicate column


def test_sample_weight_is_honoured_by_the_student_loss_and_terms(digits_batch):
    x, y = digits_batch
    teacher, student, distiller = make([losses.KD(temperature=2.0)])
    compile_(distiller, optimizer=keras.optimizers.SGD(0.0))
    weights = np.zeros(len(y), dtype="float32")
    weights[:8] = 2.0
    s_logits = keras.ops.convert_to_numpy(student(x, training=True)).astype(np.float64)
    logs = distiller.train_on_batch(x, y, sample_weight=weights, return_dict=True)
    t_logits = teacher.predict(x, verbose=0).astype(np.float64)
    expected_ce = (sparse_ce(s_logits, y) * weights).sum() / len(y)
    per_sample_kd = np.array([numpy_kd(t_logits[i:i + 1], s_logits[i:i + 1], 2.0) for i in range(len(y))])
    assert logs["student_loss"] == pytest.approx(expected_ce, rel=1e-4)
    assert logs["kd"] == pytest.approx((per_sample_kd * weights).sum() / len(y), rel=1e-4)


def test_teacher_is_frozen_and_student_batchnorm_moves_once(digits_batch):
    x, y = digits_batch
    teacher, student, distiller = make(
        [losses.KD(), losses.FeatureMSE("bn1", "bn1", adapter="auto")]
    )
    twin = keras.models.clone_model(student)
    twin.set_weights(student.get_weights())
    teacher_before = [w.copy() for w in teacher.get_weights()]
    compile_(distiller).train_on_batch(x, y)
    for before, after in zip(teacher_before, teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    # One training forward of the student alone moves BN statistics once.
    twin(x, training=True)
    np.testing.assert_allclose(
        student.get_layer("bn1").moving_mean.numpy(),
        twin.get_layer("bn1").moving_mean.numpy(), rtol=1e-6, atol=1e-7,
    )
    np.testing.assert_allclose(
        student.get_layer("bn1").moving_variance.numpy(),
        twin.get_layer("bn1").moving_variance.numpy(), rtol=1e-6, atol=1e-7,
    )


def test_evaluate_runs_the_student_only_unless_asked(digits_batch):
    x, y = digits_batch
    teacher = tiny_cnn(16, name="teacher", counter=True)
    student = tiny_cnn(8, name="student")
    distiller = keras_kd.Distiller(teacher, student, losses=[losses.KD()])
    compile_(distiller, metrics=["accuracy"])
    result = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert float(teacher.get_layer("counter").count.numpy()) == 0.0
    assert set(result) == {"loss", "student_loss", "accuracy"}
    expected = keras.metrics.SparseCategoricalAccuracy()(y, student.predict(x, verbose=0))
    assert result["accuracy"] == pytest.approx(float(expected))
    np.testing.assert_allclose(distiller.predict(x, verbose=0), student.predict(x, verbose=0))

    compile_(distiller, metrics=["accuracy"], evaluate_distillation=True)
    result = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert float(teacher.get_layer("counter").count.numpy()) == 4.0
    assert "kd" in result


def test_term_weight_changes_without_retracing(digits_batch):
    x, y = digits_batch
    traces = []

    class TracedKD(losses.KD):
        def call(self, teacher, student, labels=None, training=None):
            traces.append(1)  # Python side effect: runs only while tracing
            return super().call(teacher, student, labels, training)

    term = TracedKD(temperature=2.0, weight=1.0)
    _, _, distiller = make([term], student_loss_weight=0.0)
    compile_(distiller)
    distiller.fit(x, y, batch_size=16, epochs=1, verbose=0)
    traced = len(traces)
    term.weight = 0.0
    distiller.student_loss_weight = 0.0
    logs = distiller.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    if keras.backend.backend() == "torch":  # an eager step: the term runs once per step
        assert traced == 2 and len(traces) == 2 * traced
    else:
        assert len(traces) == traced
    assert logs["loss"][0] == pytest.approx(0.0, abs=1e-7)
    assert logs["kd"][0] > 0


def test_custom_loss_from_the_readme_trains(digits_batch):
    from keras import ops

    class CosineLogits(losses.DistillationLoss):
        teacher_taps = ("logits",)
        student_taps = ("logits",)

        def call(self, teacher, student, labels=None, training=None):
            t = ops.normalize(teacher["logits"], axis=-1)
            s = ops.normalize(student["logits"], axis=-1)
            return 1.0 - ops.sum(t * s, axis=-1)

    x, y = digits_batch
    _, _, distiller = make([CosineLogits(name="cosine")], student_loss_weight=0.0)
    history = compile_(distiller, optimizer="adam").fit(x, y, batch_size=8, epochs=3, verbose=0)
    cos = history.history["cosine"]
    assert cos[-1] < cos[0]


def test_metrics_reach_tensorboard(digits_batch, tmp_path):
    x, y = digits_batch
    _, _, distiller = make([losses.KD(), losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")])
    compile_(distiller, metrics=["accuracy"]).fit(
        x, y, batch_size=16, epochs=1, verbose=0,
        callbacks=[keras.callbacks.TensorBoard(str(tmp_path))],
    )
    tags = set()
    for path in glob.glob(os.path.join(str(tmp_path), "train", "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    for tag in ("epoch_kd", "epoch_hint", "epoch_student_loss", "epoch_loss", "epoch_accuracy"):
        assert tag in tags, (tag, tags)
    assert "epoch_total_loss" not in tags


def test_unlabeled_batches_train_on_the_distillation_terms_only(digits_batch):
    x, _ = digits_batch
    _, _, distiller = make()
    history = compile_(distiller).fit(x, batch_size=16, epochs=1, verbose=0).history
    assert "student_loss" not in history
    assert history["loss"][0] == pytest.approx(history["kd"][0], rel=1e-5)


def test_xla_trains_like_graph_mode(digits_batch):
    x, y = digits_batch
    histories, students = [], []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(5)  # the same initial weights (models and adapter)
        _, student, distiller = make([losses.KD(), losses.FeatureMSE("relu2", "relu2", adapter="auto")])
        # Keras's torch trainer runs one step per execution only.
        steps = 1 if keras.backend.backend() == "torch" else 2
        compile_(distiller, jit_compile=jit_compile, steps_per_execution=steps)
        assert distiller.jit_compile == jit_compile
        histories.append(distiller.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history)
        students.append(student)
    graph, xla = histories
    assert set(graph) == set(xla)
    for key in graph:
        assert np.all(np.isfinite(xla[key])), key
        np.testing.assert_allclose(xla[key], graph[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert xla["kd"][0] > 0 and xla["feature_mse"][0] > 0
    for a, b in zip(students[0].trainable_weights, students[1].trainable_weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)


def test_mixed_float16_trains_with_finite_losses_and_loss_scaling(digits_batch):
    x, y = digits_batch
    keras.config.set_dtype_policy("mixed_float16")
    _, student, distiller = make([losses.KD(), losses.FeatureMSE("relu2", "relu2", adapter="auto")])
    assert student.compute_dtype == "float16"
    compile_(distiller, optimizer="adam")
    assert isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    before = [w.numpy().copy() for w in student.trainable_weights]
    history = distiller.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    assert all(np.all(np.isfinite(v)) for v in history.values())
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, student.trainable_weights)]
    assert any(changed)
    assert student.get_layer("logits").kernel.dtype == "float32"


def test_distillation_terms_own_weights_that_train(digits_batch):
    x, y = digits_batch
    term = losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")
    teacher, student, distiller = make([term])
    assert term.adapter is not None
    assert term.adapter.kernel.shape == (1, 1, 16, 32)
    adapter_ids = {id(v) for v in term.trainable_weights}
    assert adapter_ids <= {id(v) for v in distiller.trainable_weights}
    assert not adapter_ids & {id(v) for v in student.weights}
    before = term.adapter.kernel.numpy().copy()
    compile_(distiller).fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert not np.array_equal(before, term.adapter.kernel.numpy())


# --- Keras's fit/evaluate/predict arguments on a Distiller ------------------------
def test_mixed_precision_with_integer_labels():
    keras.config.set_dtype_policy("mixed_float16")
    distiller = _distiller()
    history = _fit(distiller, X, Y)
    assert distiller.student.layers[-1].compute_dtype == "float16"
    assert np.isfinite(history["loss"][0]) and history["student_loss"][0] > 0


def test_sample_weight_of_shape_n_by_1_equals_shape_n():
    weights = np.linspace(0.0, 2.0, 32).astype("float32")
    distiller = _distiller()
    losses_1d = distiller.evaluate(X, Y, sample_weight=weights, verbose=0)
    losses_2d = distiller.evaluate(X, Y, sample_weight=weights[:, None], verbose=0)
    unweighted = distiller.evaluate(X, Y, verbose=0)
    assert losses_1d == pytest.approx(losses_2d) and losses_1d[0] != pytest.approx(unweighted[0])


def test_class_weight_equals_the_sample_weights_it_stands_for():
    class_weight = {c: float(c + 1) for c in range(10)}
    keras.utils.set_random_seed(7)
    by_class = _fit(_distiller(), X, Y, class_weight=class_weight, shuffle=False)
    keras.utils.set_random_seed(7)
    by_sample = _fit(_distiller(), X, Y, sample_weight=Y + 1.0, shuffle=False)
    assert by_class["student_loss"] == pytest.approx(by_sample["student_loss"], rel=1e-5)


def test_validation_split_and_tuple_give_val_metrics():
    history = _fit(_distiller(), X, Y, validation_split=0.25)
    assert history["val_student_loss"][0] > 0
    history = _fit(_distiller(), X, Y, validation_data=(X, Y))
    assert history["val_student_loss"][0] > 0


def test_predict_on_labeled_batches_ignores_the_labels():
    distiller = _distiller()
    np.testing.assert_allclose(distiller.predict(_batches(X, Y), verbose=0),
                               distiller.predict(X, verbose=0), atol=1e-6)


# --- keras.distillation's loss objects, given to the Distiller directly -------


def _evaluated_terms(distiller, x, y):
    compile_(distiller, evaluate_distillation=True)
    return distiller.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)


def test_keras_logits_distillation_is_converted_to_kd_with_equal_values(digits_batch):
    x, y = digits_batch
    obj = keras.distillation.LogitsDistillation(temperature=3.0, loss=keras.losses.KLDivergence())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras computes Hinton's loss here: nothing to warn
        teacher, student, distiller = make([obj], student_loss_weight=0.0)
    (term,) = distiller.distillation_losses
    assert isinstance(term, losses.KD) and term.temperature == 3.0 and term.weight == 1.0
    result = _evaluated_terms(distiller, x, y)
    expected = numpy_kd(teacher.predict(x, verbose=0), student.predict(x, verbose=0), 3.0)
    assert result["kd"] == pytest.approx(expected, rel=1e-4)
    # and equal to Keras's own number for the same object
    keras_value = float(obj.compute_loss(teacher.predict(x, verbose=0), student.predict(x, verbose=0)))
    assert result["kd"] == pytest.approx(keras_value, rel=1e-4)


def test_keras_default_logits_distillation_warns_at_the_users_line_and_trains(digits_batch):
    x, y = digits_batch
    with pytest.warns(UserWarning, match=r"not Hinton's distillation loss.*KD\(temperature=2.0\)") as caught:
        teacher, student, distiller = make([keras.distillation.LogitsDistillation(temperature=2.0)])
    # Reported where the Distiller is built (here, `make` in this file), not inside keras_kd.
    assert {os.path.basename(w.filename) for w in caught} == {os.path.basename(__file__)}
    (term,) = distiller.distillation_losses
    assert isinstance(term, losses.KD) and term.temperature == 2.0
    history = compile_(distiller).fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert "kd" in history and np.isfinite(history["kd"][0])


def test_keras_feature_distillation_is_converted_to_feature_mse_with_equal_values(digits_batch):
    x, y = digits_batch
    obj = keras.distillation.FeatureDistillation(loss="mse")  # the models' outputs (logits)
    teacher, student, distiller = make([obj, losses.KD(temperature=4.0)], student_loss_weight=0.0)
    assert [type(t).__name__ for t in distiller.distillation_losses] == ["FeatureMSE", "KD"]
    result = _evaluated_terms(distiller, x, y)
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    expected = float(((t.astype(np.float64) - s) ** 2).mean())
    assert result["feature_mse"] == pytest.approx(expected, rel=1e-4)
    assert result["kd"] == pytest.approx(numpy_kd(t, s, 4.0), rel=1e-4)


def test_keras_distillation_objects_that_cannot_be_converted_say_so():
    with pytest.raises(ValueError, match="FeatureDistillation with loss='mse' only"):
        make([keras.distillation.FeatureDistillation(loss="cosine_similarity")])

    class Custom(keras.distillation.DistillationLoss):
        def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
            return 0.0

        def validate_outputs(self, teacher_outputs, student_outputs):
            pass

    with pytest.raises(TypeError, match="got Custom"):
        make([Custom()])
    # Converted like any term: a second 'kd' is refused by name.
    with pytest.raises(ValueError, match=r"share the metric name\(s\) \['kd'\]"):
        make([losses.KD(), keras.distillation.LogitsDistillation(loss=keras.losses.KLDivergence())])
