"""Checks of `Distiller.compile`'s loss and metrics against a logits student.

A distilled student outputs logits. Three compile choices then go wrong
without an error in plain Keras:

- a loss object built with its default `from_logits=False`
  (`keras.losses.SparseCategoricalCrossentropy()`) reads the logits as
  probabilities: a wrong loss that still decreases;
- `"accuracy"` with a binary loss becomes `BinaryAccuracy(threshold=0.5)`,
  which thresholds logits at 0.5 instead of 0;
- a categorical metric with sparse labels (or the reverse) fails deep inside
  TensorFlow ("Shape must be rank 1 but is rank 0").
"""

import keras

_CLASSIFICATION_LOSSES = (
    "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
    "CategoricalFocalCrossentropy", "BinaryFocalCrossentropy",
)
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")
_SPARSE_ONLY = {"sparse_categorical_accuracy": "categorical_accuracy",
                "sparse_top_k_categorical_accuracy": "top_k_categorical_accuracy"}
_DENSE_ONLY = {dense: sparse for sparse, dense in _SPARSE_ONLY.items()}
_ACCURACY_NAMES = ("accuracy", "acc", "binary_accuracy")


def _outputs_probabilities(student):
    """True/False for a graph model whose last layer we can read; None otherwise."""
    layers = getattr(student, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    if isinstance(last, (keras.layers.Softmax, keras.layers.InputLayer)):
        return isinstance(last, keras.layers.Softmax)
    activation = getattr(last, "activation", None)
    if activation is None:
        return None  # a layer without an activation (Add, a submodel): unknown
    name = getattr(activation, "__name__", str(activation))
    return name in _PROBABILITY_ACTIVATIONS


def check_student_loss(student, loss):
    """Refuses a probability loss (`from_logits=False`) on a logits student."""
    kind = type(loss).__name__
    if kind not in _CLASSIFICATION_LOSSES:
        return
    try:
        from_logits = bool(loss.get_config().get("from_logits", False))
    except (AttributeError, NotImplementedError, TypeError):
        return
    if not from_logits and _outputs_probabilities(student) is False:
        raise ValueError(
            f"The student loss {kind}(from_logits=False) reads the student's outputs as "
            f"probabilities, but the student '{student.name}' outputs logits (its last layer "
            f"'{student.layers[-1].name}' has no softmax/sigmoid): the loss would be wrong "
            f"without an error. Pass {kind}(from_logits=True), or the string "
            "'sparse_categorical_crossentropy' / 'categorical_crossentropy' / "
            "'binary_crossentropy', which keras-kd reads with from_logits=True."
        )


def check_metrics(loss, metrics):
    """Returns `metrics`, with binary accuracy on logits thresholded at 0;
    raises for a sparse/one-hot metric that contradicts the loss."""
    if metrics is None:
        return metrics
    kind = type(loss).__name__
    as_list = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    checked = []
    for metric in as_list:
        if isinstance(metric, str):
            if kind == "SparseCategoricalCrossentropy" and metric in _DENSE_ONLY:
                raise ValueError(
                    f"metrics=['{metric}'] expects one-hot labels but the loss is "
                    f"SparseCategoricalCrossentropy (class indices). Use '{_DENSE_ONLY[metric]}'."
                )
            if kind == "CategoricalCrossentropy" and metric in _SPARSE_ONLY:
                raise ValueError(
                    f"metrics=['{metric}'] expects class indices but the loss is "
                    f"CategoricalCrossentropy (one-hot labels). Use '{_SPARSE_ONLY[metric]}'."
                )
            binary_logits = kind == "BinaryCrossentropy" and bool(
                loss.get_config().get("from_logits", False))
            if binary_logits and metric in _ACCURACY_NAMES:
                # Keras's default threshold 0.5 is for probabilities; a logit
                # of 0 is probability 0.5.
                metric = keras.metrics.BinaryAccuracy(name=metric, threshold=0.0)
        checked.append(metric)
    return checked if isinstance(metrics, (list, tuple)) else checked[0]
