"""Overhaul of feature distillation: Heo et al. 2019, "A Comprehensive
Overhaul of Feature Distillation" (ICCV 2019, arXiv:1904.01866), following
the official code (clovaai/overhaul-distillation).

The module holds the whole method: the margins (eq. 3, the expected
negative response of each teacher channel, read once in numpy from the
BatchNormalization layer in front of each teacher ReLU), the margin ReLU
that applies them, the partial L2 distance (eq. 6) and the `Overhaul` term.
"""
import keras
import math
import numpy as np
from keras import ops
from keras_kd.checks.tensors import check_feature_map, describe_shape
from keras_kd.losses._ops import as_name_list, to_float32
from keras_kd.losses._ops import to_float32
from keras_kd.losses._pair import MultiPairTerm, sum_over_pairs
from keras_kd.taps.views import split_tap
from keras_kd.losses.registry import register_term


def _normal_cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _normal_pdf(x):
    return math.exp(-x * x / 2.0) / math.sqrt(2.0 * math.pi)


def overhaul_margin(bn_gamma, bn_beta):
    """The per-channel margin of the teacher's pre-ReLU distribution.

    A BatchNormalization layer makes each channel ~ N(m, s²) with m = β,
    s = |γ|; the margin is the expected value of its negative responses,
    E[x | x < 0] (the mean of a normal truncated above at 0):

        margin = m − s · φ(m/s) / Φ(−m/s)   if Φ(−m/s) > 0.001
               = −3 s                        otherwise

    with φ, Φ the standard normal pdf and cdf (Heo et al. 2019, eq. 3;
    `get_margin_from_BN` of the official code). Computed once, in numpy,
    outside the training step. A channel with γ = 0 is a constant β: its
    margin is min(β, 0).

    Args:
        bn_gamma, bn_beta: arrays of shape (channels,).

    Returns a float32 numpy array of shape (channels,).

    Example:

    >>> import numpy as np
    >>> [round(float(v), 4) for v in overhaul_margin([1.0, 2.0], [0.0, 10.0])]
    [-0.7979, -6.0]
    """
    gamma = np.asarray(bn_gamma, dtype="float64").reshape(-1)
    beta = np.asarray(bn_beta, dtype="float64").reshape(-1)
    if gamma.shape != beta.shape:
        raise ValueError(
            f"gamma and beta must have the same shape, got {gamma.shape} and "
            f"{beta.shape}."
        )
    margins = []
    for g, m in zip(gamma, beta):
        s = abs(float(g))
        m = float(m)
        if s == 0.0:
            margins.append(min(m, 0.0))
            continue
        cdf = _normal_cdf(-m / s)
        if cdf > 0.001:
            margins.append(m - s * _normal_pdf(m / s) / cdf)
        else:
            margins.append(-3.0 * s)
    return np.asarray(margins, dtype="float32")


def margin_relu(teacher_features, margin):
    """The teacher transform of Heo et al. 2019: max(t, margin).

    `margin` (channels,) broadcasts over the last (channel) axis.

    Example:

    >>> import numpy as np
    >>> np.asarray(margin_relu(np.array([[-2.0, 1.0]]), np.array([-1.0, -1.0]))).tolist()
    [[-1.0, 1.0]]
    """
    t = to_float32(teacher_features)
    return ops.maximum(t, ops.cast(margin, "float32"))


def is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        return (
            layer.max_value is None
            and float(layer.negative_slope) == 0.0
            and float(layer.threshold) == 0.0
        )
    if isinstance(layer, keras.layers.Activation):
        return layer.activation is keras.activations.relu
    return False


def get_layer(model, name, role):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"Overhaul: the {role} '{model.name}' has no layer named '{name}'. "
            f"Layers that exist: {[layer.name for layer in model.layers]}."
        ) from None


def _producer(layer):
    """The layer whose output feeds `layer` (None when not found)."""
    try:
        history = layer.input._keras_history
    except (AttributeError, ValueError):
        return None
    return getattr(history, "operation", None)


def _bn_gamma_beta(bn):
    channels = int(bn.moving_mean.shape[-1])
    gamma = (
        ops.convert_to_numpy(bn.gamma) if bn.scale else np.ones(channels, "float32")
    )
    beta = (
        ops.convert_to_numpy(bn.beta) if bn.center else np.zeros(channels, "float32")
    )
    return gamma, beta


def teacher_margins(teacher, teacher_layers, bn_layers=None, term_name="overhaul"):
    """One margin array per stage, from the BN layer feeding each teacher ReLU.

    Args:
        teacher: the teacher model.
        teacher_layers: names of teacher ReLU layers, one per stage.
        bn_layers: optional names of the BatchNormalization layer of each
            stage (default: the layer producing each ReLU's input).
        term_name: the term's name, for error messages.

    Returns a list of float32 numpy arrays of shape (channels,).
    """
    margins = []
    for i, name in enumerate(teacher_layers):
        layer = get_layer(teacher, name, "teacher")
        if not is_relu(layer):
            raise ValueError(
                f"Overhaul '{term_name}': the teacher layer '{name}' is a "
                f"{type(layer).__name__}, not a ReLU. Overhaul distils "
                "the pre-ReLU feature, so name separate ReLU layers "
                "(keras.layers.ReLU() or Activation('relu')); a "
                "convolution with activation='relu' has no pre-ReLU tap."
            )
        if bn_layers is not None:
            bn = get_layer(teacher, bn_layers[i], "teacher")
        else:
            bn = _producer(layer)
        if not isinstance(bn, keras.layers.BatchNormalization):
            found = "nothing" if bn is None else f"'{bn.name}' ({type(bn).__name__})"
            raise ValueError(
                f"Overhaul '{term_name}': the margin of the teacher ReLU "
                f"'{name}' comes from the BatchNormalization layer in "
                f"front of it, but its input comes from {found}. Pass "
                "bn_layers=[...] naming the BatchNormalization layer of "
                "each stage (e.g. the last BN of a residual block)."
            )
        gamma, beta = _bn_gamma_beta(bn)
        margins.append(overhaul_margin(gamma, beta))
    return margins

def partial_l2_loss(teacher_transformed, student_features):
    """The partial L2 distance of Heo et al. 2019 (eq. 6), for each sample.

    Formula, with t = `margin_relu(teacher, margin)` and s the student's
    (connected) pre-ReLU feature, for sample b:

        L[b] = Σ_{h,w,c} (s − t)² · [s > t or t > 0]

    (the official `distillation_loss` sums over the batch; the training loop
    divides by the batch size, which is the batch mean of these values and
    what the `Overhaul` class computes, with the batch's `sample_weight`). Where the teacher is negative the student only gets pushed
    down when it is above the teacher's value.

    Returns float32 values of shape `(batch,)`, one per sample.

    Example:

    >>> import numpy as np
    >>> t = np.array([[1.0, -1.0, -1.0]])
    >>> s = np.array([[0.0, -3.0, 0.0]])
    >>> [float(v) for v in np.asarray(partial_l2_loss(t, s))]  # (0-1)² + masked + (0+1)²
    [2.0]
    """
    t = to_float32(teacher_transformed)
    s = to_float32(student_features)
    mask = ops.logical_or(s > t, t > 0)
    squared = ops.where(mask, ops.square(s - t), ops.zeros_like(s))
    return ops.sum(squared, axis=tuple(range(1, len(squared.shape))))




@keras.saving.register_keras_serializable(package="keras_kd")
@register_term
class Overhaul(MultiPairTerm):
    """Heo et al. 2019 feature distillation: pre-ReLU taps, margin ReLU on the
    teacher, a connector on the student and the partial L2 distance.

        loss = Σ_i 2^{−(n−i−1)} · partial_l2(max(t_i, m_i), C_i(s_i))

    over the n stages in the order given (the last stage has weight 1, the
    one before 1/2, ...), where t_i is the teacher's pre-ReLU feature, m_i the
    per-channel margin from the BatchNormalization layer that feeds the
    teacher ReLU (`overhaul_margin`), s_i the student's pre-ReLU feature and
    C_i a trainable connector (1×1 Conv2D without bias + BatchNormalization,
    He-normal fan-out init as the official code) to the teacher's channels.
    Per sample the term returns Σ_{h,w,c} of the masked squared error, so
    the Distiller's batch mean is the official sum / batch size.

    **Two-phase setup.** The margins need the teacher's weights, so the term
    has a `prepare(teacher, student)` hook that the Distiller calls before it
    gathers the taps and builds the terms:

    - teacher taps are `"<relu>:input"` (set in `__init__`); `prepare` checks
      each teacher layer is a ReLU (`keras.layers.ReLU()` or
      `Activation("relu")`), finds the BatchNormalization layer producing its
      input (or uses `bn_layers`) and computes the margins;
    - a student layer that is a ReLU is tapped at its input (pre-ReLU);
      any other student layer (e.g. a BatchNormalization) at its output;
    - `build` stores the margins in non-trainable variables, so a saved and
      reloaded distiller keeps the margins of the teacher it was built from.

    Args:
        teacher_layers: names of teacher ReLU layers, one per stage, shallow
            to deep.
        student_layers: names of the student layers, one per stage (ReLUs,
            tapped before the activation). Spatial sizes must match the
            teacher's stage by stage (the connector is 1×1).
        weight: the term's weight (default 1e-3: the official code divides
            the loss by 1000).
        teacher_bn_train_mode: the official code runs the teacher with its
            BatchNormalization layers in training mode (batch statistics).
            With True the Distiller runs a copy of the teacher whose BN layers
            normalize with the batch's statistics, leaving the teacher's
            weights and moving averages untouched; this applies to the whole
            teacher forward, so to every term of that Distiller.
        bn_layers: optional names of the teacher BatchNormalization layers
            to read the margins from, one per stage, for architectures where
            the BN does not directly feed the ReLU (e.g. a residual add in
            between, where the official code uses the last BN of the block).

    Example:

    ```python
    term = keras_kd.losses.Overhaul(
        ["t_relu1", "t_relu2"], ["s_relu1", "s_relu2"])
    distiller = keras_kd.Distiller(teacher, student, losses=[term])
    ```
    """

    def __init__(
        self,
        teacher_layers,
        student_layers,
        weight=1e-3,
        teacher_bn_train_mode=False,
        bn_layers=None,
        name="overhaul",
        **kwargs,
    ):
        super().__init__(teacher_layers, student_layers, weight, name, **kwargs)
        self.teacher_layers = [split_tap(t)[0] for t in self.teacher_layers]
        n = len(self.teacher_layers)
        if bn_layers is not None:
            bn_layers = as_name_list(bn_layers, "bn_layers")
            if len(bn_layers) != n:
                raise ValueError(
                    f"bn_layers names one BatchNormalization layer per stage: "
                    f"got {len(bn_layers)} for {n} stages."
                )
        self.bn_layers = bn_layers
        self.teacher_bn_train_mode = bool(teacher_bn_train_mode)
        self.teacher_batch_statistics = self.teacher_bn_train_mode
        self.stage_weights = [1.0 / 2 ** (n - i - 1) for i in range(n)]
        self.teacher_taps = tuple(f"{name}:input" for name in self.teacher_layers)
        self.student_taps = tuple(
            s if split_tap(s)[1] == "input" else f"{s}:input"
            for s in self.student_layers
        )
        self._margin_values = None
        self._restoring = False
        self.margin_variables = []
        self.connector_convs = []
        self.connector_bns = []

    # ------------------------------------------------------------------
    def prepare(self, teacher, student):
        """Finds the teacher BNs, computes the margins and fixes the taps.

        Call before the Distiller gathers taps (it does so itself). Safe to
        call again: it recomputes the margins from the teacher's current
        weights (and updates the margin variables once built).
        """
        margins = teacher_margins(teacher, self.teacher_layers, self.bn_layers, self.name)
        self._margin_values = margins
        student_taps = []
        for s in self.student_layers:
            layer_name, which = split_tap(s)
            layer = get_layer(student, layer_name, "student")
            if which == "input" or is_relu(layer):
                student_taps.append(f"{layer_name}:input")
            else:
                student_taps.append(layer_name)
        self.student_taps = tuple(student_taps)
        if self.margin_variables:
            for variable, value in zip(self.margin_variables, margins):
                if tuple(variable.shape) == value.shape:
                    variable.assign(value)

    @property
    def margins(self):
        """The margins, one float32 numpy array per stage."""
        if self.margin_variables:
            return [ops.convert_to_numpy(v) for v in self.margin_variables]
        return None if self._margin_values is None else list(self._margin_values)

    def build_from_config(self, config):
        # Reloading a saved distiller builds the term before the Distiller
        # exists: the margins start as placeholders and are restored with
        # the saved weights (prepare, if called, recomputes them first).
        self._restoring = True
        try:
            super().build_from_config(config)
        finally:
            self._restoring = False

    def _resolve_student_taps(self, student_shapes):
        # A reloaded term is built with the taps it had when saved, which
        # `prepare` may have moved from "name:input" to "name".
        taps = []
        for tap in self.student_taps:
            if tap not in student_shapes:
                name, which = split_tap(tap)
                other = name if which == "input" else f"{name}:input"
                if other in student_shapes:
                    tap = other
            taps.append(tap)
        self.student_taps = tuple(taps)

    def build(self, teacher_shapes=None, student_shapes=None):
        if self._margin_values is None:
            if not getattr(self, "_restoring", False):
                raise ValueError(
                    f"Overhaul '{self.name}' reads its margins from the "
                    "teacher's BatchNormalization layers: call "
                    "term.prepare(teacher, student) before building it "
                    "(keras_kd.Distiller does so)."
                )
            margins = [
                np.zeros((int(teacher_shapes[tap][-1]),), "float32")
                for tap in self.teacher_taps
            ]
        else:
            margins = self._margin_values
        self._resolve_student_taps(student_shapes)
        margin_variables, convs, bns = [], [], []
        for i, (t_tap, s_tap) in enumerate(zip(self.teacher_taps, self.student_taps)):
            t_shape = teacher_shapes[t_tap]
            s_shape = student_shapes[s_tap]
            check_feature_map(self, "teacher", t_tap, t_shape)
            check_feature_map(self, "student", s_tap, s_shape)
            if tuple(t_shape[1:3]) != tuple(s_shape[1:3]):
                raise ValueError(
                    f"Overhaul '{self.name}': stage {i}: the teacher tap "
                    f"'{t_tap}' has shape {describe_shape(t_shape)} and the "
                    f"student tap '{s_tap}' {describe_shape(s_shape)}; the 1x1 "
                    "connector keeps height and width, so they must match. "
                    "Pair stages of equal spatial size."
                )
            channels = t_shape[-1]
            margin = margins[i]
            if margin.shape[0] != channels:
                raise ValueError(
                    f"Overhaul '{self.name}': stage {i}: the teacher tap "
                    f"'{t_tap}' has {channels} channels but its "
                    f"BatchNormalization has {margin.shape[0]}."
                )
            margin_variables.append(
                self.add_weight(
                    shape=(channels,),
                    initializer=keras.initializers.Constant(margin),
                    trainable=False,
                    name=f"margin_{i}",
                    dtype="float32",
                )
            )
            conv = keras.layers.Conv2D(
                channels,
                1,
                use_bias=False,
                kernel_initializer=keras.initializers.VarianceScaling(
                    2.0, "fan_out", "untruncated_normal"
                ),
                name=f"{self.name}_connector_{i}_conv",
            )
            bn = keras.layers.BatchNormalization(
                momentum=0.9, epsilon=1e-5, name=f"{self.name}_connector_{i}_bn"
            )
            conv.build(s_shape)
            bn.build(conv.compute_output_shape(s_shape))
            convs.append(conv)
            bns.append(bn)
        self.margin_variables = margin_variables
        self.connector_convs = convs
        self.connector_bns = bns

    def call(self, teacher, student, labels=None, training=None):
        stages = zip(
            self.connector_convs,
            self.connector_bns,
            self.margin_variables,
            self.stage_weights,
            self.teacher_taps,
            self.student_taps,
        )
        return sum_over_pairs(
            w * partial_l2_loss(
                margin_relu(ops.stop_gradient(teacher[t_tap]), margin),
                bn(conv(student[s_tap]), training=training),
            )
            for conv, bn, margin, w, t_tap, s_tap in stages
        )

    def get_config(self):
        return {
            **super().get_config(),
            "teacher_bn_train_mode": self.teacher_bn_train_mode,
            "bn_layers": None if self.bn_layers is None else list(self.bn_layers),
        }
