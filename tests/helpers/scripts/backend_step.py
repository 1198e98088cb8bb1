"""Trains one fixed Distiller for a few steps and saves what came out.

    python tests/helpers/scripts/backend_step.py BACKEND OUT.npz [DEVICES]

BACKEND is "tensorflow", "jax" or "torch"; DEVICES > 1 (JAX only) trains under
`keras.distribution.DataParallel` on that many virtual CPU devices. Every
weight is set from one numpy generator, so the runs of any backend and device
count start from the same numbers and see the same batches; the test compares
their per-step losses and final weights (tests/backends/test_tensorflow_and_jax.py).
"""

import os
import sys

backend, out = sys.argv[1], sys.argv[2]
devices = int(sys.argv[3]) if len(sys.argv) > 3 else 1
os.environ["KERAS_BACKEND"] = backend
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
if devices > 1:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_kd  # noqa: E402

if devices > 1:
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=keras.distribution.list_devices("cpu"))
    )

teacher = keras_kd.zoo.cnn((8, 8, 1), 10, widths=(8, 16, 16), convs_per_stage=2,
                           pool_after=(1,), name="teacher")
student = keras_kd.zoo.cnn((8, 8, 1), 10, widths=(4, 8, 8), pool_after=(1,), name="student")
terms = [
    keras_kd.losses.KD(temperature=4.0),
    keras_kd.losses.FeatureMSE("stage2_relu", "stage2_relu", adapter="auto", name="hint"),
    keras_kd.losses.AttentionTransfer(["stage3_relu"], ["stage3_relu"], name="at"),
    keras_kd.losses.DKD(warmup_epochs=0, name="dkd"),
]
distiller = keras_kd.Distiller(teacher, student, losses=terms, student_loss_weight=0.5)

rng = np.random.default_rng(7)
for variable in sorted(distiller.weights, key=lambda v: v.path):
    shape = tuple(variable.shape)
    if variable.path.endswith(("moving_variance", "gamma")):
        value = 1.0 + 0.1 * rng.random(shape)
    elif variable.path.endswith("loss_weight") or "student_loss_weight" in variable.path:
        continue  # the weights the terms were given
    else:
        value = 0.2 * rng.standard_normal(shape)
    variable.assign(value.astype(variable.dtype))

x = rng.random((64, 8, 8, 1)).astype("float32")
y = rng.integers(0, 10, 64).astype("int32")
distiller.compile(
    optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
history = distiller.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history
evaluation = distiller.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
result = {f"history_{k}": np.asarray(v, "float64") for k, v in history.items()}
result.update({f"evaluate_{k}": np.float64(v) for k, v in evaluation.items()})
for variable in distiller.student.weights:
    result[f"student/{variable.path}"] = keras.ops.convert_to_numpy(variable.value)
for term in terms:
    for variable in term.weights:
        result[f"term/{variable.path}"] = keras.ops.convert_to_numpy(variable.value)
result["devices"] = np.int64(len(keras.distribution.list_devices("cpu")) if devices > 1 else 1)
np.savez(out, **result)
print("saved", out, len(result))
