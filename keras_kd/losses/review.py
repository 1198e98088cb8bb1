"""Knowledge review: Chen et al. 2021, "Distilling Knowledge via Knowledge
Review" (CVPR 2021, arXiv:2104.09044), following the official code
(dvlab-research/ReviewKD; also mdistiller's ReviewKD)."""

import keras
from keras import ops

from keras_kd.losses._ops import adaptive_avg_pool2d, resize_nearest, to_float32
from keras_kd.checks.tensors import check_feature_map, describe_shape
from keras_kd.losses._pair import MultiPairTerm, sum_over_pairs
from keras_kd.checks.numbers import is_integer
from keras_kd.losses.registry import register_term

_LEVELS = (4, 2, 1)


def _mse_per_sample(a, b):
    return ops.mean(ops.square(a - b), axis=(1, 2, 3))


def _hcl_pair_per_sample(t, s):
    t = to_float32(t)
    s = to_float32(s)
    if tuple(t.shape[1:]) != tuple(s.shape[1:]):
        raise ValueError(
            f"HCL compares maps of equal shape, got teacher "
            f"{describe_shape(t.shape)} and student {describe_shape(s.shape)}."
        )
    if len(s.shape) != 4:
        raise ValueError(
            f"HCL needs NHWC feature maps, got shape {describe_shape(s.shape)}."
        )
    h = s.shape[1]
    if h is None:
        raise ValueError("HCL needs a static height (pyramid levels depend on it).")
    loss = _mse_per_sample(s, t)
    cnt, tot = 1.0, 1.0
    for level in _LEVELS:
        if level >= h:
            continue
        pooled_s = adaptive_avg_pool2d(s, (level, level))
        pooled_t = adaptive_avg_pool2d(t, (level, level))
        cnt /= 2.0
        loss = loss + _mse_per_sample(pooled_s, pooled_t) * cnt
        tot += cnt
    return loss / tot


def hcl_loss(teacher_list, student_list):
    """Hierarchical context loss of Chen et al. 2021 (the official `hcl`).

    For each pair of NHWC maps (t, s) of equal shape (n, h, w, c):

        L = [ MSE(s, t) + Σ_{l ∈ (4, 2, 1), l < h} c_l · MSE(P_l(s), P_l(t)) ]
            / (1 + Σ c_l)

    where P_l is adaptive average pooling to l×l, MSE the mean over all
    elements and c_l = 1/2, 1/4, 1/8 for the levels kept in that order
    (levels ≥ h are skipped and do not consume a weight). Summed over pairs.
    Computed for each sample (MSE over that sample's elements): the batch
    mean of these values is the official `hcl`, and `ReviewKD` averages them
    with the batch's `sample_weight`.

    Returns float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> t = np.zeros((1, 2, 2, 1))
    >>> s = np.ones((1, 2, 2, 1))
    >>> [float(v) for v in np.asarray(hcl_loss([t], [s]))]  # (1 + 0.5·1) / 1.5
    [1.0]
    """
    teacher_list, student_list = list(teacher_list), list(student_list)
    if len(teacher_list) != len(student_list):
        raise ValueError(
            f"hcl_loss got {len(teacher_list)} teacher maps and "
            f"{len(student_list)} student maps; they pair one to one."
        )
    return sum_over_pairs(
        _hcl_pair_per_sample(t, s) for t, s in zip(teacher_list, student_list)
    )




@keras.saving.register_keras_serializable(package="keras_kd")
class ABF(keras.layers.Layer):
    """Attention-based fusion of the official ReviewKD code.

        x = BN(Conv1x1(x))                                   (mid channels)
        if fuse:
            y = nearest_resize(y, size of x)
            a = sigmoid(Conv1x1(concat[x, y]))                (2 channels)
            x = x · a[..., 0:1] + y · a[..., 1:2]
        if out_size: x = nearest_resize(x, out_size)          (mdistiller)
        out = BN(Conv3x3(x))                                 (out channels)
        returns (out, x)

    `out` is compared with the teacher's map of the stage; `x` (mid
    channels) is the residual passed to the next, shallower, stage. The
    convolutions have no bias except the attention one, with Kaiming-uniform
    (a=1) initialisation as the official code; the batch norms use PyTorch's
    momentum (0.1) and epsilon (1e-5).

    Args:
        mid_channels: channels of the fused (residual) feature.
        out_channels: channels of the output (the teacher's channels).
        fuse: whether the layer fuses a residual `y` from a deeper stage.
        out_size: None (default: keep x's size) or the (height, width) to
            resize the fused feature to before `conv2` (nearest), when the
            teacher's map has another size than the student's (mdistiller's
            `out_shape`).

    Example:

    >>> import numpy as np
    >>> abf = ABF(mid_channels=4, out_channels=3, fuse=True)
    >>> out, res = abf(np.ones((2, 4, 4, 5)), np.ones((2, 2, 2, 4)))
    >>> tuple(out.shape), tuple(res.shape)
    ((2, 4, 4, 3), (2, 4, 4, 4))
    """

    def __init__(self, mid_channels, out_channels, fuse, out_size=None, **kwargs):
        super().__init__(**kwargs)
        self.mid_channels = int(mid_channels)
        self.out_channels = int(out_channels)
        self.fuse = bool(fuse)
        if out_size is not None:
            if isinstance(out_size, int):
                out_size = (out_size, out_size)
            out_size = tuple(int(v) for v in out_size)
        self.out_size = out_size
        init = keras.initializers.VarianceScaling(1.0, "fan_in", "uniform")
        self.conv1 = keras.layers.Conv2D(
            self.mid_channels, 1, use_bias=False, kernel_initializer=init,
            name="conv1",
        )
        self.bn1 = keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, name="bn1"
        )
        self.conv2 = keras.layers.Conv2D(
            self.out_channels, 3, padding="same", use_bias=False,
            kernel_initializer=init, name="conv2",
        )
        self.bn2 = keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, name="bn2"
        )
        self.att_conv = (
            keras.layers.Conv2D(2, 1, name="att_conv") if self.fuse else None
        )

    def build(self, x_shape, y_shape=None):
        x_shape = tuple(x_shape)
        self.conv1.build(x_shape)
        mid_shape = self.conv1.compute_output_shape(x_shape)
        self.bn1.build(mid_shape)
        if self.att_conv is not None:
            self.att_conv.build(tuple(mid_shape[:-1]) + (2 * self.mid_channels,))
        if self.out_size is not None:
            mid_shape = (mid_shape[0],) + self.out_size + (self.mid_channels,)
        self.conv2.build(mid_shape)
        self.bn2.build(self.conv2.compute_output_shape(mid_shape))

    def call(self, x, y=None, training=None):
        x = self.bn1(self.conv1(x), training=training)
        if self.att_conv is not None:
            if y is None:
                raise ValueError(
                    f"ABF '{self.name}' fuses a residual: call it as "
                    "abf(x, y) with y from the deeper stage."
                )
            y = ops.cast(resize_nearest(y, (x.shape[1], x.shape[2])), x.dtype)
            z = ops.sigmoid(self.att_conv(ops.concatenate([x, y], axis=-1)))
            z = ops.cast(z, x.dtype)
            x = x * z[..., 0:1] + y * z[..., 1:2]
        if self.out_size is not None:
            x = resize_nearest(x, self.out_size)
        return self.bn2(self.conv2(x), training=training), x

    def compute_output_shape(self, x_shape, y_shape=None):
        x_shape = tuple(x_shape)
        if self.out_size is not None:
            x_shape = (x_shape[0],) + self.out_size + (x_shape[-1],)
        return (
            x_shape[:-1] + (self.out_channels,),
            x_shape[:-1] + (self.mid_channels,),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "mid_channels": self.mid_channels,
            "out_channels": self.out_channels,
            "fuse": self.fuse,
            "out_size": None if self.out_size is None else list(self.out_size),
        }


@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class ReviewKD(MultiPairTerm):
    """Knowledge review (Chen et al. 2021): the student's stages are fused
    deep-to-shallow by ABF modules and each fused output is matched to the
    teacher's stage with `hcl_loss`.

    With student stage maps s_1..s_n and teacher maps t_1..t_n (shallow to
    deep, as given):

        o_n, r_n = ABF_n(s_n)                 (no fusion at the deepest stage)
        o_i, r_i = ABF_i(s_i, r_{i+1})        for i = n−1, …, 1
        loss = hcl_loss([t_1..t_n], [o_1..o_n])

    Shape assumptions: taps are NHWC maps with static sizes, shallow to
    deep. ABF outputs the teacher's channel count, so channels may differ.
    When the student map of a stage has the teacher's height and width (the
    setting of the official code) ABF keeps that size; otherwise its fused
    feature is resized to the teacher's size by nearest neighbour before the
    3×3 conv, as mdistiller's `out_shape`. The residual of a deeper stage is
    resized to the next stage's size by nearest neighbour (torch's
    `F.interpolate(mode="nearest")`: source index floor(dst · in / out)), so
    deeper stages are normally smaller but need not be.

    Args:
        teacher_layers: teacher taps, one per stage, shallow to deep.
        student_layers: student taps, one per stage, shallow to deep.
        mid_channels: channels of the ABF residuals; default
            min(512, channels of the student's deepest tap), as mdistiller.
        weight: the term's weight (default 1, the official CIFAR setting;
            the official code also warms it up linearly over 20 epochs: use a
            weight schedule for that).

    Example:

    ```python
    term = keras_kd.losses.ReviewKD(
        ["t_stage1", "t_stage2", "t_stage3"],
        ["s_stage1", "s_stage2", "s_stage3"])
    ```
    """

    def __init__(
        self,
        teacher_layers,
        student_layers,
        mid_channels=None,
        weight=1.0,
        name="review",
        **kwargs,
    ):
        super().__init__(teacher_layers, student_layers, weight, name, **kwargs)
        if mid_channels is not None:
            if not is_integer(mid_channels) or mid_channels < 1:
                raise ValueError(f"mid_channels must be None or an int >= 1, got {mid_channels!r}.")
        self.mid_channels = mid_channels
        self.abfs = []

    def build(self, teacher_shapes=None, student_shapes=None):
        n = len(self.student_layers)
        for t, s in zip(self.teacher_layers, self.student_layers):
            check_feature_map(self, "teacher", t, teacher_shapes[t], static=True)
            check_feature_map(self, "student", s, student_shapes[s], static=True)
        mid = self.mid_channels
        if mid is None:
            mid = min(512, int(student_shapes[self.student_layers[-1]][-1]))
        # Spatial size of each stage's fused feature (the residual it passes
        # to the shallower stage): the teacher's size.
        sizes = [tuple(teacher_shapes[t][1:3]) for t in self.teacher_layers]
        abfs = []
        for i, (t, s) in enumerate(zip(self.teacher_layers, self.student_layers)):
            fuse = i < n - 1
            s_shape = tuple(student_shapes[s])
            out_size = None if tuple(s_shape[1:3]) == sizes[i] else sizes[i]
            abf = ABF(
                mid,
                int(teacher_shapes[t][-1]),
                fuse,
                out_size=out_size,
                name=f"{self.name}_abf_{i}",
            )
            y_shape = (None,) + sizes[i + 1] + (mid,) if fuse else None
            abf.build(s_shape, y_shape)
            abfs.append(abf)
        self.abfs = abfs

    def fused_features(self, student, training=None):
        """The ABF outputs o_1..o_n (shallow to deep) for a student view."""
        n = len(self.student_layers)
        results = [None] * n
        out, residual = self.abfs[n - 1](
            student[self.student_layers[n - 1]], training=training
        )
        results[n - 1] = out
        for i in range(n - 2, -1, -1):
            out, residual = self.abfs[i](
                student[self.student_layers[i]], residual, training=training
            )
            results[i] = out
        return results

    def call(self, teacher, student, labels=None, training=None):
        fused = self.fused_features(student, training=training)
        return hcl_loss([teacher[t] for t in self.teacher_layers], fused)

    def get_config(self):
        return {**super().get_config(), "mid_channels": self.mid_channels}
