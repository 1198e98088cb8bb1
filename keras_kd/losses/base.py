"""The plug-in API every distillation term implements.

A term is a `keras.layers.Layer` so that it can own trainable adapters
(regressors, connectors, fusion modules) that train with the student and are
saved with the distiller, something `keras.distillation`'s losses cannot do.
"""


import keras
from keras import ops

from keras_kd.checks.numbers import check_ignore_index, check_weight
from keras_kd.losses._dense import dense_mask
from keras_kd.taps.outputs import LOGITS


@keras.saving.register_keras_serializable(package="keras_kd")
class DistillationLoss(keras.layers.Layer):
    """Base class of every distillation term.

    A subclass declares what it reads and computes one number:

    - `teacher_taps` / `student_taps`: the names it needs from each model's
      view. `"logits"` is the model output; any other name is a layer of the
      model (its output), or `"layer_name:input"` for the layer's input (a
      pre-activation tap). The Distiller computes every tap of every term from
      ONE forward pass of each model.
    - `requires_labels`: whether `call` reads the labels.
    - `checks_class_count` (default True): whether the Distiller must check
      that the teacher's and the student's logits have the same width.
      False for terms that map classes themselves
      (`keras_kd.losses.MergedKD`).
    - `prepare(teacher, student)` (optional): called by the Distiller with
      the two models before it gathers the taps, for terms that read the
      models themselves (Overhaul's margins come from the teacher's
      BatchNormalization layers). Default: nothing.
    - `build(teacher_shapes, student_shapes)`: called once by the Distiller
      with the static shapes of the taps (dicts of tuples, batch dim `None`),
      the place to create trainable adapters, which then train with the
      student and are saved with the distiller but never exported with it.
    - `call(teacher, student, labels=None, training=None)`: `teacher` and
      `student` are dicts tap name -> tensor. Return either a scalar or one
      value per sample (shape `(batch,)`); per-sample values are averaged by
      the Distiller with the batch's `sample_weight`, as Keras losses are.

    The term's weight lives in a non-trainable variable, so `term.weight = w`
    (or a schedule callback) changes it between epochs without retracing the
    compiled train step. Terms compute in float32 (the layer's dtype policy)
    so that softmax, logs and squared errors stay accurate under
    `mixed_float16`.

    Example, a custom term in a few lines (cosine distance between logits):

    ```python
    import keras
    from keras import ops
    import keras_kd

    class CosineLogits(keras_kd.losses.DistillationLoss):
        teacher_taps = ("logits",)
        student_taps = ("logits",)

        def call(self, teacher, student, labels=None, training=None):
            t = ops.normalize(teacher["logits"], axis=-1)
            s = ops.normalize(student["logits"], axis=-1)
            return 1.0 - ops.sum(t * s, axis=-1)  # one value per sample
    ```
    """

    teacher_taps = (LOGITS,)
    student_taps = (LOGITS,)
    requires_labels = False
    checks_class_count = True
    # True asks the Distiller to run the teacher with its BatchNormalization
    # layers on batch statistics (frozen weights, moving averages untouched).
    teacher_batch_statistics = False

    def __init__(self, weight=1.0, name=None, dtype="float32", **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        initial = check_weight(weight, f"The weight of {type(self).__name__}")
        self._weight_variable = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(initial),
            trainable=False,
            name="loss_weight",
            dtype="float32",
        )

    @property
    def weight(self):
        """The term's current weight, as a Python float."""
        return float(self._weight_variable.numpy())

    @weight.setter
    def weight(self, value):
        self._weight_variable.assign(
            check_weight(value, f"The weight of term '{self.name}'")
        )

    @property
    def weight_variable(self):
        """The non-trainable variable that holds the weight (for schedules)."""
        return self._weight_variable

    @property
    def reads_logits(self):
        """True when the term compares teacher and student logits."""
        return LOGITS in self.teacher_taps or LOGITS in self.student_taps

    @property
    def metric_name(self):
        """The name of this term's metric in `fit` logs and TensorBoard."""
        return self.name

    def prepare(self, teacher, student):
        """Reads what the term needs from the models themselves. Default: no-op.

        The Distiller calls it once with the teacher and student models,
        before it gathers the terms' taps and builds the terms, so a term may
        still change `teacher_taps` / `student_taps` here, or compute
        constants from the teacher's weights (Overhaul reads its margins
        from the teacher's BatchNormalization layers). It may be called more
        than once and must then give the same result.
        """

    def build(self, teacher_shapes=None, student_shapes=None):
        """Creates adapters from the taps' static shapes. Default: none."""

    def call(self, teacher, student, labels=None, training=None):
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            "call(teacher, student, labels=None, training=None)."
        )

    def get_config(self):
        config = super().get_config()
        config["weight"] = self.weight
        # The dtype policy is an implementation choice, not a user setting.
        config.pop("dtype", None)
        return config


def reduce_per_sample(values, sample_weight=None):
    """Averages per-sample values like Keras's "sum_over_batch_size".

    `values` is a scalar (returned as is) or shape `(batch,)`. With
    `sample_weight`, returns sum(values * w) / batch, the reduction Keras
    losses use, so the same weights mean the same thing for every term.
    """
    values = ops.cast(values, "float32")
    if len(values.shape) == 0:
        return values
    if len(values.shape) != 1:
        raise ValueError(
            "A distillation term must return a scalar or one value per "
            f"sample (shape (batch,)); got shape {tuple(values.shape)}."
        )
    if sample_weight is not None:
        sample_weight = ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
        values = values * sample_weight
    return ops.mean(values)


@keras.saving.register_keras_serializable(package="keras_kd")
class LogitLossWrapper(DistillationLoss):
    """A logit term that is its loss function, as `keras.losses.LossFunctionWrapper`
    is for Keras's losses: the class holds the function and its keyword
    arguments, and builds `call` and `get_config` from them.

    `call` computes
    `fn(teacher["logits"], student["logits"][, labels], mask=..., **fn_kwargs)`
    (the labels when the class sets `requires_labels = True`), where `mask`
    leaves out the pixels of dense logits `(batch, H, W, classes)` whose label
    is `ignore_index` or negative (None for logits `(batch, classes)`).
    `get_config` returns `weight`, `ignore_index`, the name and `fn_kwargs`,
    so a subclass whose `__init__` takes the function's keyword arguments by
    the same names needs neither method:

    ```python
    import keras
    from keras import ops
    import keras_kd

    def cosine_loss(teacher_logits, student_logits, scale=1.0, mask=None):
        t = ops.normalize(teacher_logits, axis=-1)
        s = ops.normalize(student_logits, axis=-1)
        return scale * (1.0 - ops.sum(t * s, axis=-1))

    class Cosine(keras_kd.losses.LogitLossWrapper):
        def __init__(self, scale=1.0, weight=1.0, ignore_index=-1, name="cosine", **kwargs):
            super().__init__(cosine_loss, {"scale": scale}, weight=weight,
                             ignore_index=ignore_index, name=name, **kwargs)
    ```

    Each keyword argument is also an attribute of the term (`term.scale`);
    assigning it changes what the next trace computes.
    """

    def __init__(self, fn, fn_kwargs=None, weight=1.0, ignore_index=-1, name=None, **kwargs):
        super().__init__(weight=weight, name=name, **kwargs)
        self.fn = fn
        self.ignore_index = check_ignore_index(ignore_index)
        self._fn_arguments = tuple(fn_kwargs or {})
        for key, value in (fn_kwargs or {}).items():
            setattr(self, key, value)

    @property
    def fn_kwargs(self):
        """The function's keyword arguments, as the term holds them now."""
        return {key: getattr(self, key) for key in self._fn_arguments}

    def call(self, teacher, student, labels=None, training=None):
        student_logits = student[LOGITS]
        arguments = (teacher[LOGITS], student_logits)
        if self.requires_labels:
            arguments += (labels,)
        mask = dense_mask(student_logits, labels, self.ignore_index)
        return self.fn(*arguments, mask=mask, **self.fn_kwargs)

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index, **self.fn_kwargs}
