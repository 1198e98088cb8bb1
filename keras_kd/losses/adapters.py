"""Trainable adapters that map a student feature to a teacher feature's shape.

They belong to the distillation term (not to the student), so they train with
the student, are saved with the distiller and are left out of the exported
student.
"""

import keras

from keras_kd.checks.tensors import describe_shape

# The adapter kinds `make_adapter` builds (besides a keras layer given as is).
ADAPTER_KINDS = ("auto", "conv1x1", "conv3x3", "dense")


def make_adapter(kind, teacher_shape, student_shape, name):
    """Builds the layer that maps `student_shape` onto `teacher_shape`.

    Args:
        kind: `"conv1x1"`, `"conv3x3"` (NHWC maps: a convolution to the
            teacher's channels), `"dense"` (flat features), `"auto"` (1x1 conv
            for maps, dense for vectors) or a `keras.layers.Layer` to use as
            is.
        teacher_shape, student_shape: static shapes with the batch dim first.
        name: the layer's name.
    """
    if isinstance(kind, keras.layers.Layer):
        return kind
    rank = len(student_shape)
    if len(teacher_shape) != rank:
        raise ValueError(
            f"Cannot adapt a student feature of shape {describe_shape(student_shape)}"
            f" to a teacher feature of shape {describe_shape(teacher_shape)}: the "
            "ranks differ. Tap layers of the same kind (both conv maps or "
            "both vectors), or pass your own keras layer as the adapter."
        )
    if kind == "auto":
        kind = "conv1x1" if rank == 4 else "dense"
    channels = teacher_shape[-1]
    if kind in ("conv1x1", "conv3x3"):
        if rank != 4:
            raise ValueError(
                f"adapter='{kind}' needs NHWC feature maps, got shape "
                f"{describe_shape(student_shape)}; use adapter='dense'."
            )
        if teacher_shape[1:3] != student_shape[1:3]:
            raise ValueError(
                f"adapter='{kind}' keeps the spatial size, but the student map "
                f"is {describe_shape(student_shape)} and the teacher's "
                f"{describe_shape(teacher_shape)}. Tap a student layer with the "
                "teacher's height and width, or pass your own keras layer "
                "(e.g. a strided conv) as the adapter."
            )
        size = 1 if kind == "conv1x1" else 3
        return keras.layers.Conv2D(
            channels, size, padding="same", use_bias=False, name=name
        )
    if kind == "dense":
        if rank != 2:
            raise ValueError(
                f"adapter='dense' needs (batch, features) vectors, got shape "
                f"{describe_shape(student_shape)}; use adapter='conv1x1'."
            )
        return keras.layers.Dense(channels, name=name)
    raise ValueError(
        f"Unknown adapter {kind!r}. Use None, 'auto', 'conv1x1', 'conv3x3', "
        "'dense' or a keras.layers.Layer."
    )


