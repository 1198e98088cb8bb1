"""What identifies a teacher for its cache: digests of its architecture and weights.

A cache on disk is reused only for the teacher that computed it (see
`caching.build`); these digests are stored in its manifest.
"""

import hashlib
import json

import keras
import numpy as np


def _layer_signature(layer, trainable):
    # The name (Keras numbers layers) and the trainable flag (a Distiller
    # freezes its teacher) do not change what a layer computes at inference.
    try:
        config = {k: v for k, v in layer.get_config().items() if k != "name"}
    except Exception:  # a layer without get_config: its class and weights say enough
        config = {}
    if trainable is None:
        config.pop("trainable", None)
    elif "trainable" in config:
        config["trainable"] = trainable
    return [type(layer).__name__, json.dumps(config, sort_keys=True, default=str),
            [list(w.shape) for w in layer.weights]]


def architecture_digest(teacher, trainable=None):
    """The digest of the teacher's layers; `trainable=True/False` gives the form
    of 0.2.0 and earlier, which digested every layer's trainable flag too."""
    layers = [_layer_signature(layer, trainable)
              for layer in teacher._flatten_layers(include_self=False)]
    return hashlib.sha256(json.dumps([type(teacher).__name__, layers], default=str).encode()).hexdigest()[:16]


def teacher_digests(teacher):
    """(architecture, weights) digests; layer names and trainable flags are left out."""
    weights = hashlib.sha256()
    for w in teacher.weights:
        weights.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return architecture_digest(teacher), weights.hexdigest()[:16]
