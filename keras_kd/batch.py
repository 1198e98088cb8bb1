"""What one training batch holds, for every backend's step."""

import keras
from keras import ops

from keras_kd.taps.outputs import is_label_dict


def unpack_batch(data, output_names=None):
    """Splits a batch into `(x, y, sample_weight, cached_teacher_outputs)`.

    Accepted: `x`, `(x,)`, `(x, y)`, `(x, y, sample_weight)`,
    `(x, teacher_outputs)`, `(x, y, teacher_outputs)` and
    `(x, y, sample_weight, teacher_outputs)`, where `teacher_outputs` is a
    dict of precomputed teacher taps (`keras_kd.teachers.caching.cache`); a dict in
    last place is taken as teacher outputs, except in `(x, labels)` when the
    student has several outputs (`output_names`) and the dict is keyed by
    them: labels per output.
    """
    if not isinstance(data, (tuple, list)):
        return data, None, None, None
    data = tuple(data)
    if len(data) == 4:
        return data
    if len(data) == 2 and isinstance(data[1], dict):
        if not is_label_dict(data[1], output_names):
            return data[0], None, None, data[1]
    if len(data) == 3 and isinstance(data[2], dict):
        return data[0], data[1], None, data[2]
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    return x, y, sample_weight, None


def batch_size(x):
    """The number of samples in `x` (its first tensor's leading dimension)."""
    return ops.shape(keras.tree.flatten(x)[0])[0]
