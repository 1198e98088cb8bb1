"""Plain-numpy references of the logit terms, shared by several test modules:
Hinton KD, DKD and NKD (ported from the authors' code), logit standardization,
and the sparse cross-entropy of the student loss. Float64 throughout."""

import numpy as np


def numpy_kd(teacher, student, temperature):
    """Hinton et al. 2015: T² · mean_b KL(softmax(t/T) || softmax(s/T))."""
    def softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    p = softmax(teacher.astype(np.float64) / temperature)
    q = softmax(student.astype(np.float64) / temperature)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=-1)
    return float(kl.mean() * temperature**2)


def numpy_kd_per_sample(teacher, student, temperature):
    """T² · KL per row in float64 (accurate while KL >> 1e-16)."""
    def log_softmax(z):
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    log_p = log_softmax(teacher.astype(np.float64) / temperature)
    log_q = log_softmax(student.astype(np.float64) / temperature)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1) * temperature**2


# Written line by line from the authors' code (mdistiller, cls_KD).
def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _kl_div_sum(log_input, target):
    """torch F.kl_div(log_input, target, reduction="sum"), 0·log 0 = 0."""
    safe = np.where(target > 0, target, 1.0)
    return float(np.where(target > 0, target * (np.log(safe) - log_input), 0.0).sum())


def numpy_dkd(logits_teacher, logits_student, target, alpha, beta, temperature):
    """mdistiller/distillers/DKD.py::dkd_loss, ported to numpy (float64)."""
    logits_student = logits_student.astype(np.float64)
    logits_teacher = logits_teacher.astype(np.float64)
    n, c = logits_student.shape
    gt_mask = np.zeros((n, c))
    gt_mask[np.arange(n), target] = 1.0
    other_mask = 1.0 - gt_mask
    pred_student = _softmax(logits_student / temperature)
    pred_teacher = _softmax(logits_teacher / temperature)

    def cat_mask(t):
        t1 = (t * gt_mask).sum(axis=1, keepdims=True)
        t2 = (t * other_mask).sum(axis=1, keepdims=True)
        return np.concatenate([t1, t2], axis=1)

    pred_student = cat_mask(pred_student)
    pred_teacher = cat_mask(pred_teacher)
    log_pred_student = np.log(pred_student)
    tckd = _kl_div_sum(log_pred_student, pred_teacher) * temperature**2 / n
    pred_teacher_part2 = _softmax(logits_teacher / temperature - 1000.0 * gt_mask)
    log_pred_student_part2 = _log_softmax(logits_student / temperature - 1000.0 * gt_mask)
    nckd = _kl_div_sum(log_pred_student_part2, pred_teacher_part2) * temperature**2 / n
    return alpha * tckd + beta * nckd


def numpy_nkd(logit_t, logit_s, gt_label, temp, gamma):
    """yzd-v/cls_KD NKDLoss.forward, ported to numpy (float64)."""
    logit_s = logit_s.astype(np.float64)
    logit_t = logit_t.astype(np.float64)
    if gt_label.ndim > 1:
        label = gt_label.argmax(axis=1)[:, None]
    else:
        label = gt_label.reshape(len(gt_label), 1)
    n, c = logit_s.shape
    s_i = _log_softmax(logit_s)
    t_i = _softmax(logit_t)
    s_t = np.take_along_axis(s_i, label, axis=1)
    t_t = np.take_along_axis(t_i, label, axis=1)
    loss_t = -(t_t * s_t).mean()
    mask = np.ones_like(logit_s, dtype=bool)
    mask[np.arange(n), label[:, 0]] = False
    logit_s = logit_s[mask].reshape(n, -1)
    logit_t = logit_t[mask].reshape(n, -1)
    S_i = _log_softmax(logit_s / temp)
    T_i = _softmax(logit_t / temp)
    loss_non = (T_i * S_i).sum(axis=1).mean()
    loss_non = -gamma * temp**2 * loss_non
    return float(loss_t + loss_non)


def logit_data(seed, n=16, c=10, scale=3.0):
    """Teacher and student logits and sparse labels, seeded."""
    rng = np.random.default_rng(seed)
    t = rng.normal(scale=scale, size=(n, c)).astype("float32")
    s = rng.normal(scale=scale, size=(n, c)).astype("float32")
    y = rng.integers(0, c, size=n).astype("int32")
    return t, s, y


def each_sample(reference, t, s, y, *args):
    """The authors' batch loss of each sample alone: the per-sample values
    `dkd_loss` / `nkd_loss` return (their batch mean is the authors' loss)."""
    return np.array([reference(t[i:i + 1], s[i:i + 1], y[i:i + 1], *args) for i in range(len(t))])


def numpy_standardize(z):
    """mdistiller/distillers/KD.py::normalize: torch .std is unbiased."""
    z = z.astype(np.float64)
    mean = z.mean(axis=-1, keepdims=True)
    std = z.std(axis=-1, ddof=1, keepdims=True)
    return (z - mean) / (1e-7 + std)


def sparse_ce(logits, labels):
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def log_softmax(z):
    """log softmax over the last axis, in float64."""
    z = z.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
