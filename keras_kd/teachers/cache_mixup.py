"""Mixup views for the teacher cache: each view mixes a sample with a partner.

`Mixup(alpha)` is an augmentation of *two* samples, so it needs what a
per-sample `augment(x, seed)` cannot see: another sample's pixels and
label. Everything about a view is a stateless function of its seed
`[base_seed, index·K + v]` (as for any cached view): the partner index, the
mixing weight λ ~ Beta(α, α) and an optional per-image `base` augmentation
of both images. The cache (inputs in memory) computes the teacher's
outputs on exactly that mixed image, and training replays it with the
mixed label λ·onehot(y) + (1 − λ)·onehot(y_partner), so the student's loss
must take one-hot labels (`CategoricalCrossentropy(from_logits=True)`).

Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization"; Beyer et
al. 2022 show mixup-style "function matching" views make distillation
patient and consistent.
"""

import tensorflow as tf


class Mixup:
    """A pair augmentation for `teachers.cache(..., augment=Mixup(0.2), views=K)`.

    Args:
        alpha: the Beta(α, α) concentration of the mixing weight (α > 0).
        base: optional stateless per-image augmentation `fn(x, seed)` applied
            to both images before mixing (e.g. `caching.crop_flip`).
        num_classes: classes for the one-hot labels (default: the width of
            the cached teacher logits).

    Example:

    ```python
    views = keras_kd.teachers.caching.build(
        teacher, train, augment=Mixup(0.2, base=crop_flip), views=8)
    distiller.compile(optimizer="adam",
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    distiller.fit(views.dataset(128, shuffle=True), epochs=30)
    ```
    """

    pairs = True

    def __init__(self, alpha=0.2, base=None, num_classes=None):
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"Mixup alpha must be a number > 0, got {alpha!r}.")
        if base is not None and not callable(base):
            raise TypeError(f"Mixup base must be a function (x, seed) -> x or None, got {base!r}.")
        self.alpha, self.base, self.num_classes = float(alpha), base, num_classes
        # The cache's settings digest names the function: mixup's code plus its arguments.
        self.__qualname__ = f"Mixup(alpha={self.alpha}, base={getattr(base, '__qualname__', base)})"
        self.__module__ = __name__

    @staticmethod
    def _seed(seed, salt):
        return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt)

    def partner(self, seed, count):
        """The partner's sample index in [0, count) for the view of `seed`."""
        return tf.random.stateless_uniform([], seed=self._seed(seed, 1), maxval=count,
                                           dtype=tf.int64)

    def weight(self, seed):
        """λ ~ Beta(α, α), as the ratio of two stateless Gamma(α) draws."""
        a = tf.random.stateless_gamma([], seed=self._seed(seed, 2), alpha=self.alpha)
        b = tf.random.stateless_gamma([], seed=self._seed(seed, 3), alpha=self.alpha)
        return a / tf.maximum(a + b, 1e-12)

    def __call__(self, x, seed, partner):
        return self._mix_images(x, seed, partner, self.weight(seed))

    def _mix_images(self, x, seed, partner, lam):
        if self.base is not None:
            x, partner = self.base(x, self._seed(seed, 4)), self.base(partner, self._seed(seed, 5))
        lam = tf.cast(lam, x.dtype)
        return lam * x + (1 - lam) * tf.cast(partner, x.dtype)

    def labels(self, y, partner_y, seed, num_classes, lam=None):
        """λ·onehot(y) + (1 − λ)·onehot(partner_y) (labels already one-hot are mixed as they are)."""
        classes = self.num_classes or num_classes
        y, partner_y = tf.convert_to_tensor(y), tf.convert_to_tensor(partner_y)
        if y.shape.rank == 0:
            if classes is None:
                raise ValueError("Mixup needs num_classes to one-hot integer labels: the cache "
                                 "holds no full logits to read it from (top_k); pass "
                                 "Mixup(..., num_classes=C).")
            y, partner_y = tf.one_hot(y, classes), tf.one_hot(partner_y, classes)
        lam = tf.cast(self.weight(seed) if lam is None else lam, tf.float32)
        return lam * tf.cast(y, tf.float32) + (1 - lam) * tf.cast(partner_y, tf.float32)

    def mix(self, x, partner, y, partner_y, seed, num_classes):
        """The view's image and label, with one draw of λ for both (the replay's hot path)."""
        lam = self.weight(seed)
        return (self._mix_images(x, seed, partner, lam),
                self.labels(y, partner_y, seed, num_classes, lam=lam))


def is_pair_augment(augment):
    return bool(getattr(augment, "pairs", False))
