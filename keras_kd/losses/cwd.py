"""CWD: Shu et al. 2021, "Channel-wise Knowledge Distillation for Dense
Prediction" (ICCV 2021, arXiv:2011.13256); conventions of the authors' code
(`CriterionCWD` with norm_type="channel", divergence="kl" in
irfanICMLL/TorchDistiller `SemSeg-distill/utils/criterion.py`) and of
mmrazor's `ChannelWiseDivergence` (`mmrazor/models/losses/cwd.py`)."""

import keras
from keras import ops

from keras_kd.checks.tensors import describe_shape
from keras_kd.losses.kd import _kd_positions
from keras_kd.checks.numbers import check_kd_temperature
from keras_kd.losses._pair import SinglePairTerm
from keras_kd.taps.views import LOGITS
from keras_kd.losses.registry import register_term


def _channel_rows(x):
    """NHWC `(batch, H, W, C)` -> `(batch, C, H·W)`, float32."""
    x = ops.cast(ops.convert_to_tensor(x), "float32")
    x = ops.reshape(x, (ops.shape(x)[0], -1, x.shape[-1]))
    return ops.transpose(x, (0, 2, 1))


def cwd_loss(teacher_maps, student_maps, temperature=1.0):
    """Channel-wise distillation (Shu et al., ICCV 2021).

    Each channel c of a map (batch, H, W, C) becomes a distribution over its
    H·W positions, φ(y_c) = softmax(y_c / T) over (h, w). For sample n:

        cwd_n = T² / C · Σ_c KL(φ(t_{n,c}) ‖ φ(s_{n,c}))

    whose mean over the N samples of a batch is the authors' `CriterionCWD(norm_type="channel", divergence="kl")`
    and mmrazor's `ChannelWiseDivergence` (sum of the KL over all channels
    and positions, divided by N·C, times T²). The KL is computed with the
    cancellation-free form of `kd_loss`, so it stays exact at any T. The
    teacher's maps carry no gradient. mmrazor's Cityscapes setting for
    PSPNet logits: T = 1, loss weight 5.

    Args:
        teacher_maps: `(batch, H, W, C)` teacher logit (or feature) maps.
        student_maps: student maps of the same shape.
        temperature: T > 0.

    Returns:
        float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> t = np.zeros((1, 2, 2, 1)); t[0, 0, 0, 0] = 2.0
    >>> [round(float(v), 4) for v in np.asarray(cwd_loss(t, np.zeros((1, 2, 2, 1))))]
    [0.468]
    """
    temperature = check_kd_temperature(temperature)
    t_shape, s_shape = tuple(teacher_maps.shape), tuple(student_maps.shape)
    if len(s_shape) != 4 or len(t_shape) != 4 or t_shape[1:] != s_shape[1:]:
        raise ValueError(
            "cwd_loss compares NHWC maps of the same height, width and "
            f"channels; got teacher {describe_shape(t_shape)} and student "
            f"{describe_shape(s_shape)}. Resize the student's map or add "
            "a 1×1 convolution to match the channels."
        )
    t = ops.stop_gradient(_channel_rows(teacher_maps))
    s = _channel_rows(student_maps)
    # T² · KL over the H·W positions of each channel (the stable form of
    # `kd_loss`), then the mean over channels.
    return ops.mean(_kd_positions(t, s, temperature), axis=-1)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class CWD(SinglePairTerm):
    """Channel-wise distillation (Shu et al. 2021), see `cwd_loss`.

    Returns one value per sample (the mean over channels of T²·KL of the
    spatial distributions), so `sample_weight` applies. Every pixel counts:
    the channel distributions are over all H·W positions, as in the authors'
    code (there is no ignore mask).

    Args:
        teacher_layer, student_layer: the taps, NHWC maps of equal shape
            (default: the models' dense logits).
        temperature: T > 0 (default 1, mmrazor's Cityscapes setting).
        weight: the term's weight (default 1; mmrazor uses 5 for PSPNet
            logits on Cityscapes).

    Example:

    ```python
    distiller = keras_kd.Distiller(
        teacher_unet, student_unet, losses=[keras_kd.losses.CWD(temperature=1.0)])
    ```
    """

    def __init__(
        self,
        teacher_layer=LOGITS,
        student_layer=LOGITS,
        temperature=1.0,
        weight=1.0,
        name="cwd",
        **kwargs,
    ):
        super().__init__(teacher_layer, student_layer, weight, name, **kwargs)
        self.temperature = check_kd_temperature(temperature)

    def build(self, teacher_shapes=None, student_shapes=None):
        t_shape = (teacher_shapes or {}).get(self.teacher_layer)
        s_shape = (student_shapes or {}).get(self.student_layer)
        if t_shape is None or s_shape is None:
            return
        if len(t_shape) != 4 or len(s_shape) != 4 or tuple(t_shape[1:]) != tuple(s_shape[1:]):
            raise ValueError(
                f"CWD '{self.name}': the teacher tap '{self.teacher_layer}' "
                f"{describe_shape(t_shape)} and the student tap "
                f"'{self.student_layer}' {describe_shape(s_shape)} must be "
                "NHWC maps of the same height, width and channels."
            )

    def call(self, teacher, student, labels=None, training=None):
        return cwd_loss(
            teacher[self.teacher_layer], student[self.student_layer], self.temperature
        )

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
