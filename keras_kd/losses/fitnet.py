"""FitNets hints: Romero et al. 2014, "FitNets: Hints for Thin Deep Nets"
(arXiv:1412.6550)."""

import keras

from keras_kd.checks.tensors import describe_shape
from keras_kd.losses.feature_mse import FeatureMSE, feature_mse_loss
from keras_kd.losses.registry import register_term


def hint_loss(teacher_features, student_features):
    """FitNets hint loss of each sample, shape `(batch,)`.

    Formula, with the teacher's hint layer t and the (regressed) student's
    guided layer s, both of shape (batch, ...), for sample b:

        L_hint[b] = mean_{h, w, c} (t[b] − s[b])²

    Romero et al. 2014 (FitNets, eq. 3) write ½‖t − r(s)‖²; the public code
    (RepDistiller's `HintLoss`, `nn.MSELoss()`) takes the mean over the
    batch's elements, which is the batch mean of these values (the `FitNet`
    class averages them with the batch's `sample_weight`). The same math as
    `feature_mse_loss`, which computes it.

    Example:

    >>> import numpy as np
    >>> t = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> s = np.array([[1.0, 0.0], [3.0, 2.0]])
    >>> [float(v) for v in np.asarray(hint_loss(t, s))]
    [2.0, 2.0]
    """
    return feature_mse_loss(teacher_features, student_features)




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class FitNet(FeatureMSE):
    """FitNets (Romero et al. 2014): regress the student's guided layer onto
    the teacher's hint layer, see `hint_loss`.

        loss = mean (F_t − r(F_s))²

    The regressor r is trainable and owned by the term (it trains with the
    student, is saved with the distiller and is left out of the exported
    student). It is built from the two taps' static shapes:
    `"auto"` gives a 1×1 convolution to the teacher's channels for NHWC maps
    (which must share height and width) and a dense layer for vectors.
    FitNet is a `FeatureMSE` whose adapter is called the regressor (argument,
    config key and attributes `regressor` / `regressor_kind`).

    Args:
        teacher_layer: the hint layer of the teacher (`"name"` or
            `"name:input"`).
        student_layer: the guided layer of the student.
        regressor: `"auto"` (default), `"conv1x1"`, `"conv3x3"`, `"dense"`, a
            keras layer mapping the student feature to the teacher's shape, or
            None when the two shapes are equal.
        weight: the term's weight (default 1; RepDistiller's CIFAR scripts use
            100 for FitNet).

    Note: FitNets trains in two stages (hints first, then the task with KD);
    with one `fit`, schedule the weights, or run `fit` twice.

    Example:

    ```python
    term = keras_kd.losses.FitNet("block2_conv", "block1_conv")
    distiller = keras_kd.Distiller(teacher, student, losses=[term])
    ```
    """

    _adapter_arg = "regressor"  # so: `regressor`, `regressor_kind`

    def __init__(
        self,
        teacher_layer,
        student_layer,
        regressor="auto",
        weight=1.0,
        name="hint",
        **kwargs,
    ):
        super().__init__(
            teacher_layer, student_layer, regressor, weight=weight, name=name, **kwargs
        )

    def _check_shapes(self, t_shape, s_shape, adapted):
        if tuple(t_shape[1:]) != tuple(s_shape[1:]):
            what = " (after the regressor)" if adapted else ""
            raise ValueError(
                f"FitNet '{self.name}': the teacher hint '{self.teacher_layer}'"
                f" has shape {describe_shape(t_shape)} but the student's "
                f"guided layer '{self.student_layer}'{what} has shape "
                f"{describe_shape(s_shape)}. Use regressor='auto' (a 1x1 conv "
                "for maps of equal height and width, a dense layer for "
                "vectors), regressor='conv3x3', your own keras layer, or tap "
                "layers of matching shapes."
            )
