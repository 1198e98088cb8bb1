"""Channel-wise distillation: Shu et al. 2021, "Channel-wise Knowledge
Distillation for Dense Prediction" (ICCV; arXiv:2011.13256)."""

import keras
from keras import ops

from keras_kd.losses.base import check_temperature
from keras_kd.losses.features import FeatureMSE
from keras_kd.taps import LOGITS


def cwd_per_sample(teacher_maps, student_maps, temperature=4.0):
    """T²/C · Σ_c KL(softmax_hw(t_c/T) ‖ softmax_hw(s_c/T)) per sample, (batch,)."""
    temperature = check_temperature(temperature)
    t = ops.cast(teacher_maps, "float32")
    s = ops.cast(student_maps, "float32")
    shape = tuple(t.shape)
    if len(shape) != 4 or tuple(s.shape)[1:] != shape[1:]:
        raise ValueError(
            "cwd_loss needs teacher and student NHWC maps of the same shape, "
            f"got {shape} and {tuple(s.shape)}. Pass adapter='auto' to CWD for "
            "a trainable 1x1 conv when the channels differ."
        )
    positions = shape[1] * shape[2] if None not in shape[1:3] else -1
    t = ops.reshape(t, (-1, positions, shape[3])) / temperature
    s = ops.reshape(s, (-1, positions, shape[3])) / temperature
    # The softmax runs over the spatial positions of each channel (axis 1).
    log_p_t = ops.log_softmax(t, axis=1)
    log_p_s = ops.log_softmax(s, axis=1)
    kl = ops.sum(ops.exp(log_p_t) * (log_p_t - log_p_s), axis=1)  # (batch, C)
    return ops.mean(kl, axis=-1) * (temperature**2)


def cwd_loss(teacher_maps, student_maps, temperature=4.0):
    """Channel-wise distillation loss, a float32 scalar.

    Each channel c of an NHWC map is turned into a distribution over the
    H·W spatial positions, p_c = softmax_hw(t_c / T) for the teacher and
    q_c = softmax_hw(s_c / T) for the student, and

        cwd = T² / (N · C) · Σ_n Σ_c Σ_hw p_nc,hw · (log p_nc,hw − log q_nc,hw)

    The normalisation by batch N and channels C and the T² factor follow
    the authors' code (irfanICMLL/TorchDistiller `CriterionCWD`, as ported
    to mmrazor's `ChannelWiseDivergence`: `loss * tau**2 / (C * N)`). The
    maps are dense logits (batch, H, W, classes) or feature maps; the paper
    uses T = 4 on logits.

    Args:
        teacher_maps: `(batch, H, W, C)` teacher map.
        student_maps: `(batch, H, W, C)` student map of the same shape.
        temperature: T > 0.

    Example:

    >>> import numpy as np
    >>> t = np.zeros((1, 1, 2, 1)); t[0, 0, 0, 0] = 1.0
    >>> s = np.zeros((1, 1, 2, 1))
    >>> round(float(cwd_loss(t, s, temperature=1.0)), 4)
    0.1109
    """
    return ops.mean(cwd_per_sample(teacher_maps, student_maps, temperature))


@keras.saving.register_keras_serializable(package="keras_kd")
class CWD(FeatureMSE):
    """Channel-wise distillation (Shu et al. 2021), see `cwd_loss`.

    Reads the dense logits by default (`"logits"` of shape (batch, H, W,
    classes)); any pair of NHWC feature taps works, with `adapter="auto"`
    (a trainable 1x1 conv on the student map, as mmrazor aligns channels)
    when the channel counts differ.

    Args:
        teacher_layer: teacher tap (default `"logits"`).
        student_layer: student tap (default `"logits"`).
        temperature: T > 0 (default 4, the paper's value for logits).
        adapter: None, `"auto"`, `"conv1x1"`, `"conv3x3"` or a keras layer.
        weight: the term's weight (the paper uses 3 for segmentation logits).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher, student, losses=[keras_kd.losses.CWD(temperature=4, weight=3)])
    ```
    """

    def __init__(
        self,
        teacher_layer=LOGITS,
        student_layer=LOGITS,
        temperature=4.0,
        adapter=None,
        weight=1.0,
        name="cwd",
        **kwargs,
    ):
        super().__init__(
            teacher_layer, student_layer, adapter=adapter, weight=weight,
            name=name, **kwargs,
        )
        self.temperature = check_temperature(temperature)

    def build(self, teacher_shapes=None, student_shapes=None):
        for role, tap, shapes in (
            ("teacher", self.teacher_layer, teacher_shapes),
            ("student", self.student_layer, student_shapes),
        ):
            shape = shapes[tap]
            if shape is not None and len(shape) != 4:
                raise ValueError(
                    f"CWD '{self.name}': the {role} tap '{tap}' has shape "
                    f"{shape}, but CWD needs NHWC maps (batch, H, W, C): dense "
                    "logits or a convolutional feature. For (batch, classes) "
                    "logits use keras_kd.losses.KD."
                )
        super().build(teacher_shapes, student_shapes)

    def _loss_per_sample(self, teacher_features, student_features):
        return cwd_per_sample(teacher_features, student_features, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
