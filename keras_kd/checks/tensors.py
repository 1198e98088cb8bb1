"""Shape checks of the tensors the loss functions and terms receive.

Every check raises a ValueError that names the function or term, both
shapes and the fix; the tensors it returns are float32, so that softmax,
logs and squared errors stay exact under `mixed_float16`.
"""

from keras import ops


def describe_shape(shape):
    """`(None, 8, 8, 16)`-style text for error messages."""
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def check_logit_pair(teacher_logits, student_logits, what, cast=True):
    """Both logits as float32, after checking their shapes agree.

    Accepts `(batch, classes)` or dense `(batch, ..., classes)` logits with a
    static number of classes; float32 so that softmax and logs stay exact
    under `mixed_float16`. With `cast=False` they keep their dtype (a caller
    that casts chunk by chunk, so that no float32 copy of large bfloat16
    logits is made).
    """
    t = ops.convert_to_tensor(teacher_logits)
    s = ops.convert_to_tensor(student_logits)
    if cast:
        t, s = ops.cast(t, "float32"), ops.cast(s, "float32")
    if len(s.shape) < 2 or s.shape[-1] is None:
        raise ValueError(
            f"{what}: logits must have shape (batch, classes) or (batch, H, "
            f"W, classes) with a static number of classes; got student "
            f"logits of shape {tuple(s.shape)}."
        )
    if len(t.shape) != len(s.shape) or t.shape[-1] != s.shape[-1]:
        raise ValueError(
            f"{what}: teacher logits {tuple(t.shape)} and student logits "
            f"{tuple(s.shape)} must have the same rank and the same number "
            "of classes (the same classes in the same order)."
        )
    return t, s


def check_mask(mask, values_shape, what):
    """Casts `mask` to float32 and checks it has the positions' shape."""
    mask = ops.cast(ops.convert_to_tensor(mask), "float32")
    if len(mask.shape) != len(values_shape) or any(
        m is not None and v is not None and m != v
        for m, v in zip(mask.shape, values_shape)
    ):
        raise ValueError(
            f"{what}: the mask must have the shape of the logits without "
            f"their class axis, {tuple(values_shape)}; got "
            f"{tuple(mask.shape)}. Use 1 for positions that count and 0 for "
            "ignored ones."
        )
    return mask


def check_feature_map(term, role, tap, shape, static=False):
    """Raises unless `shape` is an NHWC feature map (with static height, width
    and channels when `static`), naming the term, the tap and the fix."""
    if shape is not None and len(shape) == 4 and not (static and None in shape[1:]):
        return
    needs = "NHWC feature maps (batch, height, width, channels)"
    if static:
        needs += " with static height, width and channels"
    raise ValueError(
        f"{type(term).__name__} '{term.name}': the {role} tap '{tap}' has "
        f"shape {describe_shape(shape)}, but {type(term).__name__} needs "
        f"{needs}. Tap convolutional layers."
    )


def check_same_shape(term, teacher_tap, teacher_shape, student_tap, student_shape):
    """Raises a ValueError naming the taps and the fix when shapes differ."""
    if tuple(teacher_shape[1:]) == tuple(student_shape[1:]):
        return
    raise ValueError(
        f"{type(term).__name__} '{term.name}': the teacher tap '{teacher_tap}' "
        f"has shape {describe_shape(teacher_shape)} but the student tap "
        f"'{student_tap}' has shape {describe_shape(student_shape)}, and no adapter "
        "maps one onto the other. Pass adapter='auto' (a trainable 1x1 conv "
        "for feature maps, a dense layer for vectors), adapter='conv3x3', or "
        "your own keras layer, or tap layers of equal shape."
    )
