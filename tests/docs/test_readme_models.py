"""Runs every snippet of the README's section "Your own models".

The snippets are executed as written, except `weights="imagenet"`, which
becomes `weights=None` (no download); the data they name is made here.
"""

import os
import re
import warnings

import numpy as np
import pytest

from tests.helpers.paths import ROOT

DOC = os.path.join(ROOT, "README.md")


def snippets():
    with open(DOC) as handle:
        text = handle.read()
    section = text.split("\n## Your own models\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def run(code, namespace):
    code = code.replace('weights="imagenet"', "weights=None")
    exec(compile(code, DOC, "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def test_the_doc_has_the_five_snippets():
    blocks = snippets()
    assert len(blocks) == 5
    assert "resnet50/conv4_block6_out" in blocks[0]
    assert "on_output" in blocks[1] and "CWD" in blocks[2]
    assert "keras.distillation.Distiller" in blocks[3] and "from_keras" in blocks[4]


@pytest.mark.slow  # builds ResNet50 + MobileNetV3Small and compiles a step
def test_nested_backbone_snippet():
    rng = np.random.default_rng(0)
    namespace = {
        "x_train": rng.uniform(0, 1, (8, 32, 32, 3)).astype("float32"),
        "y_train": rng.integers(0, 10, 8),
    }
    namespace = run(snippets()[0], namespace)
    history = namespace["distiller"].history.history
    assert history["feature_mse"][-1] > 0 and history["kd"][-1] > 0


def test_several_outputs_snippet():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 4, (8, 8, 8))
    pixels[:, 0] = -1
    namespace = run(snippets()[1], {
        "x_multi": rng.normal(size=(8, 8, 8, 2)).astype("float32"),
        "y_classes": rng.integers(0, 3, 8),
        "y_pixels": pixels,
    })
    history = namespace["distiller"].history.history
    assert history["kd_classes"][-1] > 0 and history["kd_pixels"][-1] > 0


def test_dense_prediction_snippet():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 11, (8, 56, 56))
    labels[rng.uniform(size=labels.shape) < 0.2] = -1
    namespace = run(snippets()[2], {
        "x_pixels": rng.uniform(0, 1, (8, 56, 56, 1)).astype("float32"),
        "y_dense": labels,
    })
    history = namespace["distiller"].history.history
    assert history["cwd"][-1] > 0 and 0 <= history["accuracy"][-1] <= 1


def test_migration_snippets_before_and_after():
    import keras

    def mlp(name):
        x = keras.Input((8,))
        h = keras.layers.Dense(16, activation="relu", name="hidden")(x)
        return keras.Model(x, keras.layers.Dense(3, name="logits")(h), name=name)

    rng = np.random.default_rng(3)
    data = {
        "x_small": rng.normal(size=(32, 8)).astype("float32"),
        "y_small": rng.integers(0, 3, 32),
    }
    keras.utils.set_random_seed(0)
    before = run(snippets()[3], {**data, "mlp_teacher": mlp("t"), "mlp_student": mlp("s")})
    assert before["distiller"].history.history["loss"][-1] > 0
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        after = run(snippets()[4], {**data, "mlp_teacher": mlp("t"), "mlp_student": mlp("s")})
    assert any("not Hinton's distillation loss" in str(w.message) for w in caught)
    terms = after["distiller"].distillation_losses
    assert [type(t).__name__ for t in terms] == ["KD", "FeatureMSE"]
    assert [t.weight for t in terms] == pytest.approx([0.5, 0.05])
    history = after["distiller"].history.history
    assert history["kd"][-1] > 0 and history["feature_mse"][-1] > 0
