"""The machine the bench's results came from. Shared by `command` and
`report` (neither imports the other's internals); both write their records
with `keras_kd.atomic.write_json`, so a kill never leaves a half-written
result."""

import platform

import keras

from keras_kd.tools.timing import machine_info


def environment():
    """Machine and versions, for the report."""
    import tensorflow as tf  # the bench trains with tf.data

    machine = machine_info()
    gpus = tf.config.list_physical_devices("GPU")
    return (f"{machine['cpu']}, {machine['nproc']} cores, {machine['ram']} RAM, "
            f"{len(gpus)} GPU(s); Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
