"""The PyTorch step (keras_kd/backends/torch.py) against independent numbers.

What could break in Keras's torch trainer: gradients left on the weights by
the previous step (`zero_grad`), a gradient reaching the teacher, the
teacher's BatchNormalization statistics moving, sample weights and
unlabeled samples in the gradient, and loss scaling under mixed precision.
The student is a linear softmax classifier, so every update is checked
against gradients written out in numpy (float64).

Runs in the torch pass (`KERAS_BACKEND=torch python -m pytest`).
"""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd import losses
from tests.helpers.models import tiny_cnn

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch",
                                reason="the PyTorch step; runs with KERAS_BACKEND=torch")

CLASSES, TEMPERATURE, LR = 10, 3.0, 0.5


def _linear_student(name="student"):
    inputs = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten(name="flat")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(flat), name=name)


def _batches(count, n=16, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, CLASSES, n))
            for _ in range(count)]


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _numpy_sgd_step(kernel, bias, teacher_logits, x, y, weight, student_loss_weight, kd_weight):
    """One SGD step on student_loss_weight·CE + kd_weight·KD, float64.

    CE is Keras's "sum over batch size" turned into a mean over the labeled
    samples (labels -1 are unlabeled); KD = T²·KL(p_T ‖ q_T), summed with the
    sample weights over the batch size. d(T²·KL)/ds = T·(q − p).
    """
    flat = x.reshape(len(x), -1).astype(np.float64)
    logits = flat @ kernel + bias
    weight = np.ones(len(x)) if weight is None else weight.astype(np.float64)
    labeled = (y >= 0).astype(np.float64)
    onehot = np.eye(CLASSES)[np.maximum(y, 0)]
    grad_ce = (weight * labeled)[:, None] * (_softmax(logits) - onehot) / labeled.sum()
    p = _softmax(teacher_logits.astype(np.float64) / TEMPERATURE)
    q = _softmax(logits / TEMPERATURE)
    grad_kd = weight[:, None] * TEMPERATURE * (q - p) / len(x)
    grad = student_loss_weight * grad_ce + kd_weight * grad_kd
    return kernel - LR * flat.T @ grad, bias - LR * grad.sum(0)


@pytest.mark.parametrize("case", ["plain", "sample_weight", "unlabeled"])
def test_each_step_applies_its_own_gradient_of_the_weighted_objective(case):
    # Two steps: had the first step's gradient stayed on the weights (no
    # zero_grad), the second update would add it again.
    teacher = tiny_cnn(8, name="teacher")
    student = _linear_student()
    distiller = keras_kd.Distiller(teacher, student, student_loss_weight=0.6,
                                   losses=[losses.KD(temperature=TEMPERATURE, weight=0.8)])
    distiller.compile(optimizer=keras.optimizers.SGD(LR), loss="sparse_categorical_crossentropy")
    dense = student.get_layer("logits")
    kernel, bias = (np.asarray(v.numpy(), np.float64) for v in (dense.kernel, dense.bias))
    rng = np.random.default_rng(1)
    for x, y in _batches(2):
        weight = None
        if case != "plain":  # float64 weights, zeros included
            weight = rng.choice([0.0, 0.5, 2.0], size=len(x))
        if case == "unlabeled":
            y = np.where(np.arange(len(y)) % 3 == 0, -1, y)
        teacher_logits = keras.ops.convert_to_numpy(teacher(x, training=False))
        distiller.train_on_batch(x, y, sample_weight=weight)
        kernel, bias = _numpy_sgd_step(kernel, bias, teacher_logits, x, y, weight, 0.6, 0.8)
        np.testing.assert_allclose(dense.kernel.numpy(), kernel, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(dense.bias.numpy(), bias, rtol=1e-4, atol=1e-6)


def test_the_teacher_gets_no_gradient_even_when_unfrozen_after_building():
    # The teacher runs under torch.no_grad: even with its weights made
    # trainable again (so the optimizer sees them), nothing reaches them.
    teacher = tiny_cnn(8, name="teacher")
    student = tiny_cnn(4, name="student")
    distiller = keras_kd.Distiller(
        teacher, student,
        losses=[losses.KD(temperature=TEMPERATURE),
                losses.FeatureMSE("relu2", "relu2", adapter="auto", name="hint")])
    teacher.trainable = True
    distiller.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
    before = [np.array(v.numpy()) for v in teacher.weights]
    x, y = _batches(1, n=32)[0]
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        history = distiller.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert history["hint"][0] > 0
    for variable, old in zip(teacher.weights, before):
        np.testing.assert_array_equal(variable.numpy(), old, err_msg=variable.path)
        assert variable.value.grad is None, variable.path


def test_teacher_batchnorm_statistics_stay_and_the_students_move_once_per_step():
    teacher = tiny_cnn(8, name="teacher")
    student = tiny_cnn(4, name="student")
    bn = teacher.get_layer("bn1")
    bn.moving_mean.assign(np.full(8, 0.7, "float32"))
    bn.moving_variance.assign(np.full(8, 3.0, "float32"))
    # Overhaul reads the teacher through a batch-statistics copy of it.
    terms = [losses.KD(temperature=TEMPERATURE),
             losses.Overhaul(["relu1"], ["relu1"], teacher_bn_train_mode=True)]
    distiller = keras_kd.Distiller(teacher, student, losses=terms)
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    copy_bn = distiller.teacher_with_batch_statistics.get_layer("bn1")
    x, y = _batches(1)[0]
    conv1 = keras.Model(student.input, student.get_layer("conv1").output)
    pre = keras.ops.convert_to_numpy(conv1(x)).astype(np.float64)
    student_bn = student.get_layer("bn1")
    momentum = student_bn.momentum
    distiller.train_on_batch(x, y)
    for layer in (bn, copy_bn):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), np.full(8, 0.7, "float32"))
        np.testing.assert_array_equal(layer.moving_variance.numpy(), np.full(8, 3.0, "float32"))
    # The student's statistics move by exactly one update (SGD(0): the
    # weights stay, so the batch statistics are the ones computed here).
    np.testing.assert_allclose(student_bn.moving_mean.numpy(),
                               (1 - momentum) * pre.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-7)


def test_mixed_float16_unscales_the_gradient_of_the_scaled_loss():
    keras.config.set_dtype_policy("mixed_float16")
    teacher = tiny_cnn(8, name="teacher")
    student = _linear_student()
    keras.config.set_dtype_policy("float32")
    distiller = keras_kd.Distiller(teacher, student, student_loss_weight=0.6,
                                   losses=[losses.KD(temperature=TEMPERATURE, weight=0.8)])
    distiller.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(LR)),
                      loss="sparse_categorical_crossentropy")
    dense = student.get_layer("logits")
    kernel, bias = (np.asarray(v.numpy(), np.float64) for v in (dense.kernel, dense.bias))
    x, y = _batches(1)[0]
    teacher_logits = keras.ops.convert_to_numpy(teacher(x, training=False)).astype(np.float64)
    distiller.train_on_batch(x, y)
    assert float(distiller.optimizer.dynamic_scale.numpy()) == 2.0**15  # the loss was scaled
    want_kernel, want_bias = _numpy_sgd_step(kernel, bias, teacher_logits, x, y, None, 0.6, 0.8)
    # float16 activations: the update (not scaled by 2^15) agrees to float16 precision.
    np.testing.assert_allclose(dense.kernel.numpy() - kernel, want_kernel - kernel,
                               rtol=2e-2, atol=2e-3 * np.abs(want_kernel - kernel).max())
    np.testing.assert_allclose(dense.bias.numpy() - bias, want_bias - bias,
                               rtol=2e-2, atol=2e-3 * np.abs(want_bias - bias).max())


def test_evaluate_records_no_graph_and_changes_nothing():
    teacher, student = tiny_cnn(8, name="teacher"), tiny_cnn(4, name="student")
    distiller = keras_kd.Distiller(teacher, student, losses=[losses.KD(temperature=TEMPERATURE)])
    distiller.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                      evaluate_distillation=True)
    x, y = _batches(1)[0]
    before = [np.array(v.numpy()) for v in distiller.weights]
    logs = distiller.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    for variable, old in zip(distiller.weights, before):
        np.testing.assert_array_equal(variable.numpy(), old, err_msg=variable.path)
        assert variable.value.grad is None, variable.path
    t = keras.ops.convert_to_numpy(teacher(x, training=False)).astype(np.float64)
    s = keras.ops.convert_to_numpy(student(x, training=False)).astype(np.float64)
    p, q = _softmax(t / TEMPERATURE), _softmax(s / TEMPERATURE)
    kd = TEMPERATURE**2 * (p * (np.log(p) - np.log(q))).sum(-1).mean()
    assert logs["kd"] == pytest.approx(kd, rel=1e-4)
