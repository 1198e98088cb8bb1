"""Several outputs: "output:<name>" taps, on_output, a dict student loss; a
softmax head refused where a logit term reads it."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from keras_kd.losses import KD, on_output
from keras_kd.taps.views import ModelView
from tests.helpers.models import tiny_cnn

CLASSES, SEG = 3, 4


def two_headed(name, width=4, softmax_classes=False, dict_outputs=True, seg_name="segmentation"):
    x = keras.Input((8, 8, 2))
    f = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="feat")(x)
    seg = keras.layers.Conv2D(SEG, 1, name=seg_name)(f)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(f)
    cls = keras.layers.Dense(
        CLASSES, activation="softmax" if softmax_classes else None, name="classes"
    )(pooled)
    outputs = {seg_name: seg, "classes": cls} if dict_outputs else [seg, cls]
    return keras.Model(x, outputs, name=name)


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 2)).astype("float32")
    seg = rng.integers(0, SEG, (n, 8, 8)).astype("int32")
    seg[:, :2, :] = -1  # ignored pixels
    cls = rng.integers(0, CLASSES, n).astype("int32")
    return x, {"segmentation": seg, "classes": cls}


def test_view_returns_every_output_by_name():
    model = two_headed("m")
    view = ModelView(model, ["output:classes", "feat"])
    assert view.output_names == ["classes", "segmentation"]
    assert set(view.taps) == {"output:classes", "output:segmentation", "feat"}
    x, _ = batch()
    out = view(x)
    reference = model(x)
    numpy = keras.ops.convert_to_numpy
    np.testing.assert_allclose(numpy(out["output:segmentation"]), numpy(reference["segmentation"]),
                               rtol=1e-6)
    np.testing.assert_allclose(numpy(out["output:classes"]), numpy(reference["classes"]), rtol=1e-6)
    predictions = view.predictions(out)
    assert sorted(predictions) == ["classes", "segmentation"]


def test_list_outputs_are_named_by_their_layers_and_logits_resolves():
    model = two_headed("m", dict_outputs=False, seg_name="logits")
    view = ModelView(model, [])
    assert view.output_names == ["logits", "classes"]
    x, _ = batch()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(view(x)["logits"]),
                               keras.ops.convert_to_numpy(model(x)[0]), rtol=1e-6)


def test_multi_output_student_without_a_logits_output_gets_a_clear_error():
    x = keras.Input((8, 8, 2))
    one = keras.Model(x, keras.layers.Dense(CLASSES)(keras.layers.Flatten()(x)), name="one")
    with pytest.raises(ValueError, match=r"student 's' has 2 outputs \['classes', 'segmentation'\] and none is named 'logits'.*on_output"):
        keras_kd.Distiller(one, two_headed("s"), losses=[KD()])
    teacher, student = two_headed("t", 8), two_headed("s")
    with pytest.raises(ValueError, match=r"Unknown tap 'output:boxes'.*\['output:classes', 'output:segmentation'\]"):
        keras_kd.Distiller(teacher, student, losses=[on_output(KD(), "boxes")])


def test_softmax_is_refused_only_on_the_output_a_term_reads():
    teacher, student = two_headed("t", 8, softmax_classes=True), two_headed("s")
    with pytest.raises(ValueError, match=r"'t' ends in a softmax \(layer 'classes', output 'classes'\)"):
        keras_kd.Distiller(teacher, student, losses=[on_output(KD(), "classes")])
    keras_kd.Distiller(teacher, student, losses=[on_output(KD(), "segmentation")])


def test_class_count_is_checked_per_output():
    teacher = two_headed("t", 8)
    x = keras.Input((8, 8, 2))
    student = keras.Model(x, keras.layers.Dense(5, name="logits")(keras.layers.Flatten()(x)), name="s")
    with pytest.raises(ValueError, match=r"\('output:classes'\).*\('logits'\).*same classes in the same order"):
        keras_kd.Distiller(teacher, student, losses=[on_output(KD(), "classes", "logits")])


def test_dict_student_loss_and_per_output_terms_match_a_manual_computation():
    keras.utils.set_random_seed(0)
    teacher, student = two_headed("t", 8), two_headed("s")
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[
            on_output(KD(temperature=2, name="kd_classes"), "classes"),
            on_output(KD(temperature=4, name="kd_seg", weight=0.5), "segmentation"),
        ],
        student_loss_weight=0.7,
    )
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    distiller.compile(optimizer="sgd", loss={"classes": ce, "segmentation": "sparse_categorical_crossentropy"})
    x, y = batch()
    t_view, s_view = distiller.teacher_view(x), distiller.student_view(x, training=False)
    total, parts = distiller.compute_distillation_loss(t_view, s_view, y, training=False)
    s_out = student(x)
    t_out = teacher(x)
    # hard loss: classes CE + segmentation CE over the labelled pixels only
    seg = y["segmentation"]
    logits = keras.ops.convert_to_numpy(s_out["segmentation"])
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    pixel_ce = -np.take_along_axis(log_probs, np.maximum(seg, 0)[..., None], -1)[..., 0]
    seg_ce = pixel_ce[seg >= 0].mean()
    cls_ce = float(ce(y["classes"], s_out["classes"]))
    assert float(parts["student_loss"]) == pytest.approx(cls_ce + seg_ce, rel=1e-5)
    # the per-output KD terms see their own outputs (and the seg labels' mask)
    kd_cls = float(keras.ops.mean(keras_kd.losses.kd_loss(t_out["classes"], s_out["classes"], 2.0)))
    assert float(parts["kd_classes"]) == pytest.approx(kd_cls, rel=1e-5)

    def pixel_kd(t, s, temperature):
        t, s = t / temperature, s / temperature
        lp = t - np.log(np.exp(t).sum(-1, keepdims=True))
        lq = s - np.log(np.exp(s).sum(-1, keepdims=True))
        return (np.exp(lp) * (lp - lq)).sum(-1) * temperature**2

    per_pixel = pixel_kd(np.asarray(t_out["segmentation"]).astype("float64"), logits.astype("float64"), 4.0)
    valid = seg >= 0
    kd_seg = np.mean([per_pixel[b][valid[b]].mean() for b in range(len(seg))])
    assert float(parts["kd_seg"]) == pytest.approx(kd_seg, rel=1e-5)
    assert float(total) == pytest.approx(0.7 * (cls_ce + seg_ce) + kd_cls + 0.5 * kd_seg, rel=1e-5)
    history = distiller.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert set(history.history) >= {"kd_classes", "kd_seg", "student_loss", "loss"}


def test_dict_loss_errors_name_the_outputs():
    teacher, student = two_headed("t", 8), two_headed("s")
    distiller = keras_kd.Distiller(teacher, student, losses=[on_output(KD(), "classes")])
    with pytest.raises(ValueError, match=r"names the output\(s\) \['boxes'\].*\['classes', 'segmentation'\]"):
        distiller.compile(loss={"boxes": "mse"})
    distiller.compile(loss={"classes": "sparse_categorical_crossentropy"})
    x, y = batch()
    with pytest.raises(ValueError, match="the labels must be a dict"):
        distiller.student_loss(y["classes"], distiller.student_view.predictions(distiller.student_view(x)))


def test_teacher_with_two_outputs_teaches_a_one_output_student():
    keras.utils.set_random_seed(1)
    teacher = two_headed("t", 8)
    x = keras.Input((8, 8, 2))
    f = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, padding="same")(x))
    student = keras.Model(x, keras.layers.Dense(CLASSES, name="logits")(f), name="s")
    term = on_output(KD(), teacher_output="classes", student_output="logits")
    distiller = keras_kd.Distiller(teacher, student, losses=[term])
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    xb, y = batch()
    history = distiller.fit(xb, y["classes"], batch_size=2, epochs=1, verbose=0)
    assert history.history["kd"][-1] > 0
    # the term's weight and metric name stay those of the wrapped KD
    term.weight = 0.25
    assert term.term.weight == 0.25 and term.metric_name == "kd"


def test_on_output_round_trips_through_a_saved_distiller(tmp_path):
    teacher, student = two_headed("t", 8), two_headed("s")
    distiller = keras_kd.Distiller(teacher, student, losses=[on_output(KD(temperature=3), "classes")])
    path = str(tmp_path / "d.keras")
    distiller.save(path)
    loaded = keras.saving.load_model(path)
    term = loaded.distillation_losses[0]
    assert term.teacher_taps == ("output:classes",) and term.term.temperature == 3.0


def test_softmax_head_is_refused_for_logit_terms():
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(10, activation="softmax", name="probs")(keras.layers.Flatten()(inputs))
    student = keras.Model(inputs, outputs, name="probs_student")
    with pytest.raises(ValueError, match="ends in a softmax.*'probs'"):
        keras_kd.Distiller(tiny_cnn(16), student, losses=[losses.KD()])
