"""What the bench writes: result files (atomically) and the machine they
came from. Shared by `command` and `report` (neither imports the other's
internals)."""

import json
import os
import platform

import keras

from keras_kd.tools.timing import machine_info


def write_json(path, data):
    """Writes atomically, so a kill never leaves a half-written result."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)


def environment():
    """Machine and versions, for the report."""
    import tensorflow as tf  # the bench trains with tf.data

    machine = machine_info()
    gpus = tf.config.list_physical_devices("GPU")
    return (f"{machine['cpu']}, {machine['nproc']} cores, {machine['ram']} RAM, "
            f"{len(gpus)} GPU(s); Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
