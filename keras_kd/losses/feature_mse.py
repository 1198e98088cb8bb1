"""Plain feature matching: mean squared error between two tapped features."""

import keras
from keras import ops

from keras_kd.losses.adapters import ADAPTER_KINDS, make_adapter
from keras_kd.checks.tensors import check_same_shape
from keras_kd.losses._pair import SinglePairTerm
from keras_kd.losses.registry import register_term


def feature_mse_loss(teacher_features, student_features):
    """Mean squared error of each sample's features, shape `(batch,)`.

    For sample b, over all its elements (positions and channels):

        mse[b] = mean_{h, w, c} (F_t[b] − F_s[b])²

    as `keras.losses.mean_squared_error` of the flattened features. The
    `FeatureMSE` class averages these values with the batch's
    `sample_weight`, so with equal weights its value is the mean over all
    elements of the batch.

    Example:

    >>> import numpy as np
    >>> t = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> s = np.array([[1.0, 0.0], [3.0, 2.0]])
    >>> [float(v) for v in np.asarray(feature_mse_loss(t, s))]
    [2.0, 2.0]
    >>> [float(v) for v in np.asarray(feature_mse_loss(np.ones((2, 3)), np.zeros((2, 3))))]
    [1.0, 1.0]
    """
    t = ops.cast(teacher_features, "float32")
    s = ops.cast(student_features, "float32")
    squared = ops.reshape(ops.square(t - s), (ops.shape(t)[0], -1))
    return ops.mean(squared, axis=-1)


# 0.1's `feature_mse` returned the batch mean; it still does until 0.3.


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class FeatureMSE(SinglePairTerm):
    """MSE between a teacher layer's output and a student layer's output,
    see `feature_mse_loss`.

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

    # The adapter's name: the argument, the config key, the attributes (the
    # spec in `adapter_kind`, the built layer in `adapter`) and so the path of
    # its weights in a saved .keras file. FitNet calls it "regressor".
    _adapter_arg = "adapter"

    def __init__(
        self,
        teacher_layer,
        student_layer,
        adapter=None,
        weight=1.0,
        name="feature_mse",
        **kwargs,
    ):
        super().__init__(teacher_layer, student_layer, weight, name, **kwargs)
        if isinstance(adapter, dict):  # from get_config
            adapter = keras.saving.deserialize_keras_object(adapter)
        if not (
            adapter is None
            or isinstance(adapter, keras.layers.Layer)
            or adapter in ADAPTER_KINDS
        ):
            raise ValueError(
                f"Unknown {self._adapter_arg} {adapter!r}. Use None, 'auto', "
                "'conv1x1', 'conv3x3', 'dense' or a keras.layers.Layer."
            )
        setattr(self, f"{self._adapter_arg}_kind", adapter)
        setattr(self, self._adapter_arg, None)

    def _check_shapes(self, t_shape, s_shape, adapted):
        student_tap = self.student_layer
        if adapted:
            student_tap = f"{student_tap} (adapted)"
        check_same_shape(self, self.teacher_layer, t_shape, student_tap, s_shape)

    def build(self, teacher_shapes=None, student_shapes=None):
        t_shape = teacher_shapes[self.teacher_layer]
        s_shape = student_shapes[self.student_layer]
        kind = getattr(self, f"{self._adapter_arg}_kind")
        if kind is None:
            self._check_shapes(t_shape, s_shape, adapted=False)
            return
        adapter = make_adapter(
            kind, t_shape, s_shape, name=f"{self.name}_{self._adapter_arg}"
        )
        setattr(self, self._adapter_arg, adapter)
        if not adapter.built:  # a user layer restored from a .keras file is
            adapter.build(s_shape)  # already built by Keras's loader
        out_shape = adapter.compute_output_shape(s_shape)
        self._check_shapes(t_shape, out_shape, adapted=True)

    def call(self, teacher, student, labels=None, training=None):
        s = student[self.student_layer]
        adapter = getattr(self, self._adapter_arg)
        if adapter is not None:
            s = adapter(s, training=training)
        return feature_mse_loss(teacher[self.teacher_layer], s)

    def get_config(self):
        kind = getattr(self, f"{self._adapter_arg}_kind")
        if isinstance(kind, keras.layers.Layer):
            kind = keras.saving.serialize_keras_object(kind)
        return {**super().get_config(), self._adapter_arg: kind}
