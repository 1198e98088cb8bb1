"""Plain feature matching: mean squared error between two tapped features."""

import keras
from keras import ops

from keras_kd.losses.adapters import check_same_shape, make_adapter
from keras_kd.losses.base import DistillationLoss


def feature_mse(teacher_features, student_features):
    """Mean over all elements of (teacher − student)², a float32 scalar.

    Example:

    >>> import numpy as np
    >>> float(feature_mse(np.ones((2, 3)), np.zeros((2, 3))))
    1.0
    """
    t = ops.cast(teacher_features, "float32")
    s = ops.cast(student_features, "float32")
    return ops.mean(ops.square(t - s))


def feature_mse_per_sample(teacher_features, student_features):
    """Mean squared error of each sample's features, shape (batch,)."""
    t = ops.cast(teacher_features, "float32")
    s = ops.cast(student_features, "float32")
    squared = ops.reshape(ops.square(t - s), (ops.shape(t)[0], -1))
    return ops.mean(squared, axis=-1)


@keras.saving.register_keras_serializable(package="keras_kd")
class FeatureMSE(DistillationLoss):
    """MSE between a teacher layer's output and a student layer's output.

        loss = mean_b mean_{h,w,c} (F_t − A(F_s))²

    where A is an optional trainable adapter when the shapes differ
    (`adapter="auto"`: 1×1 conv for NHWC maps, dense for vectors). With
    `adapter=None` the two taps must have equal shapes; the Distiller says so
    before training when they don't.

    Args:
        teacher_layer: tap on the teacher (`"name"` or `"name:input"`).
        student_layer: tap on the student.
        adapter: None, `"auto"`, `"conv1x1"`, `"conv3x3"`, `"dense"` or a
            keras layer applied to the student feature.
        weight: the term's weight.

    Example:

    ```python
    term = keras_kd.losses.FeatureMSE("block3_conv", "block3_conv",
                                      adapter="auto", weight=0.5)
    ```
    """

    def __init__(
        self,
        teacher_layer,
        student_layer,
        adapter=None,
        weight=1.0,
        name="feature_mse",
        **kwargs,
    ):
        super().__init__(weight=weight, name=name, **kwargs)
        if isinstance(adapter, dict):  # from get_config
            adapter = keras.saving.deserialize_keras_object(adapter)
        self.teacher_layer = teacher_layer
        self.student_layer = student_layer
        self.adapter_kind = adapter
        self.adapter = None
        self.teacher_taps = (teacher_layer,)
        self.student_taps = (student_layer,)

    def build(self, teacher_shapes=None, student_shapes=None):
        t_shape = teacher_shapes[self.teacher_layer]
        s_shape = student_shapes[self.student_layer]
        if self.adapter_kind is None:
            check_same_shape(
                self, self.teacher_layer, t_shape, self.student_layer, s_shape
            )
            return
        self.adapter = make_adapter(
            self.adapter_kind, t_shape, s_shape, name=f"{self.name}_adapter"
        )
        self.adapter.build(s_shape)
        out_shape = self.adapter.compute_output_shape(s_shape)
        check_same_shape(
            self, self.teacher_layer, t_shape, f"{self.student_layer} (adapted)",
            out_shape,
        )

    def call(self, teacher, student, labels=None, training=None):
        s = student[self.student_layer]
        if self.adapter is not None:
            s = self.adapter(s, training=training)
        return feature_mse_per_sample(teacher[self.teacher_layer], s)

    def get_config(self):
        adapter = self.adapter_kind
        if isinstance(adapter, keras.layers.Layer):
            adapter = keras.saving.serialize_keras_object(adapter)
        return {
            **super().get_config(),
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
            "adapter": adapter,
        }
