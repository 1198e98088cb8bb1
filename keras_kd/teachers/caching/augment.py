"""Stateless augmentations for the teacher cache, per sample and per batch.

A cache replays, on every epoch, the exact view of each sample the teacher
labelled, so its augmentation must be a pure function `augment(x, seed)` of
one sample and an int64 seed of shape (2,). Run per sample, such a function
costs a `tf.data` map call for each sample (about 35 µs of overhead on a
CPU, a third of a small model's epoch). An augmentation may therefore also
offer `augment.batched(x, seeds)`: the same views for a whole batch `x`
(leading axis) and its seeds `(batch, 2)`, equal bit for bit to stacking the
per-sample calls. The cache then augments once per batch; it checks the
equality on real samples before it caches anything (`check_batched`).

TensorFlow's stateless random ops take one seed per call, so they cannot be
vectorized over per-sample seeds (`tf.vectorized_map` has no rule for
them). `seeded_uniform` is a counter-based generator instead (the
SplitMix64 finalizer of Steele et al. 2014 over the seed and a counter), a
pure elementwise function of the seeds: the same numbers per sample and per
batch.
"""

import tensorflow as tf


_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / φ, SplitMix64's increment


def _u64(value):
    return tf.constant(value, tf.uint64)


def _mix64(z):
    """SplitMix64's finalizer: a bijection of uint64 that scrambles every bit."""
    shift = tf.bitwise.right_shift
    z = (z ^ shift(z, _u64(30))) * _u64(0xBF58476D1CE4E5B9)
    z = (z ^ shift(z, _u64(27))) * _u64(0x94D049BB133111EB)
    return z ^ shift(z, _u64(31))


def seeded_uniform(seeds, count):
    """`count` uniform floats in [0, 1) per seed, a pure function of each seed.

    Args:
        seeds: int tensor of shape `(..., k)`, k >= 1 (an augmentation's
            seed has k = 2).
        count: how many numbers per seed.

    Returns:
        float32 of shape `(..., count)`, multiples of 2⁻²⁴. Element j of a
        row depends on that row's seed and j only, so a batch of seeds gives
        the rows that each seed gives alone.
    """
    seeds = tf.bitcast(tf.cast(seeds, tf.int64), tf.uint64)
    key = _mix64(seeds[..., 0] + _u64(_GOLDEN))
    for column in range(1, seeds.shape[-1]):
        key = _mix64(key ^ seeds[..., column])
    steps = tf.range(1, count + 1, dtype=tf.int64)
    counters = tf.bitcast(steps, tf.uint64) * _u64(_GOLDEN)
    bits = _mix64(key[..., None] + counters)
    return tf.cast(tf.bitwise.right_shift(bits, _u64(40)), tf.float32) * (1.0 / (1 << 24))


class CropFlip:
    """The CIFAR augmentation, stateless: zero-pad `pad` pixels on each side,
    take a random crop of the original size, flip left-right with
    probability ½ (RepDistiller/CRD's `RandomCrop(32, padding=4)` +
    `RandomHorizontalFlip()`).

    `crop_flip(x, seed)` augments one image `(H, W, C)`; `crop_flip.batched(x,
    seeds)` a batch `(B, H, W, C)` with seeds `(B, 2)`, giving the same
    pixels as the per-sample calls (two gathers per batch: rows, then
    columns, the flip folded into the column order).

    Example:

    >>> import numpy as np
    >>> x = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    >>> seeds = np.array([[0, 1], [0, 2]])
    >>> one = np.stack([CropFlip(pad=1)(x[i], seeds[i]).numpy() for i in range(2)])
    >>> bool((CropFlip(pad=1).batched(x, seeds).numpy() == one).all())
    True
    """

    def __init__(self, pad=4):
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"CropFlip pad must be an int >= 0 (pixels per side), got {pad!r}.")
        self.pad = pad
        # The cache's settings name the augmentation by these two attributes.
        self.__qualname__ = f"CropFlip(pad={pad})"
        self.__module__ = __name__

    def __repr__(self):
        return self.__qualname__

    def _draws(self, seeds):
        draw = seeded_uniform(seeds, 3)
        offsets = tf.cast(draw[..., :2] * (2 * self.pad + 1), tf.int32)  # each in [0, 2·pad]
        return offsets, draw[..., 2] < 0.5

    def __call__(self, x, seed):
        x = tf.convert_to_tensor(x)
        offsets, flip = self._draws(tf.convert_to_tensor(seed))
        shape = tf.shape(x)
        pad = self.pad
        padded = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]])
        crop = tf.slice(padded, tf.stack([offsets[0], offsets[1], 0]), shape)
        return tf.cond(flip, lambda: tf.reverse(crop, [1]), lambda: crop)

    def batched(self, x, seeds):
        """The views of a batch `x` (B, H, W, C) under seeds (B, 2)."""
        x = tf.convert_to_tensor(x)
        offsets, flip = self._draws(tf.convert_to_tensor(seeds))
        shape = tf.shape(x)
        height, width = shape[1], shape[2]
        # Source pixel of each output pixel, in the unpadded image: one
        # gather per batch, then zeros where the crop reads the padding
        # (tf.pad of the whole batch costs more than the crop itself).
        rows = offsets[:, :1] - self.pad + tf.range(height)[None]
        columns = tf.range(width)[None]
        columns = tf.where(flip[:, None], width - 1 - columns, columns) + offsets[:, 1:] - self.pad
        inside = (((rows >= 0) & (rows < height))[:, :, None]
                  & ((columns >= 0) & (columns < width))[:, None, :])
        source = (tf.clip_by_value(rows, 0, height - 1)[:, :, None] * width
                  + tf.clip_by_value(columns, 0, width - 1)[:, None, :])
        pixels = tf.reshape(x, tf.stack([shape[0], height * width, shape[3]]))
        crop = tf.reshape(tf.gather(pixels, tf.reshape(source, tf.stack([shape[0], -1])),
                                    axis=1, batch_dims=1), shape)
        return tf.where(inside[..., None], crop, tf.zeros_like(crop))


crop_flip = CropFlip(4)


def with_batched(augment, batched):
    """Attaches a batched form to a per-sample `augment(x, seed)` and returns it.

    `batched(x, seeds)` must give, for a batch and its seeds `(B, 2)`, the
    per-sample views stacked (the cache checks this on real samples before
    it uses it). Example: a crop + flip followed by a per-pixel normalization
    works per sample and per batch alike.

    >>> normalize = lambda x: (x - 0.5) / 0.25
    >>> aug = with_batched(lambda x, s: normalize(crop_flip(x, s)),
    ...                    lambda x, s: normalize(crop_flip.batched(x, s)))
    >>> callable(aug.batched)
    True
    """
    if not callable(batched):
        raise TypeError(f"batched must be a function (x, seeds) -> x, got {batched!r}.")
    augment.batched = batched
    return augment


def batched_form(augment):
    """`augment.batched` when the augmentation offers one, else None."""
    batched = getattr(augment, "batched", None)
    return batched if callable(batched) else None


def check_batched(augment, x, base_seed=0):
    """Refuses an `augment.batched` whose views differ from the per-sample ones.

    `x` is a batch of real samples (the dataset's first); the views of each
    sample under the seeds `[base_seed, i]` must be equal byte for byte.
    """
    batched = batched_form(augment)
    if batched is None or not tf.is_tensor(x):
        return
    count = int(x.shape[0]) if x.shape[0] is not None else int(tf.shape(x)[0])
    seeds = tf.stack([tf.fill([count], tf.cast(base_seed, tf.int64)),
                      tf.range(count, dtype=tf.int64)], axis=1)
    name = getattr(augment, "__qualname__", repr(augment))
    try:
        together = tf.convert_to_tensor(batched(x, seeds))
    except Exception as error:  # the user's function: any failure is reported with its cause
        raise TypeError(f"augment {name!r}: its batched(x, seeds) form failed on a batch of "
                        f"shape {tuple(x.shape)} with seeds of shape (batch, 2): {error}") from error
    alone = tf.stack([augment(x[i], seeds[i]) for i in range(count)])
    if together.dtype != alone.dtype:
        raise ValueError(
            f"augment {name!r}: batched(x, seeds) returns {together.dtype.name} but the "
            f"per-sample form returns {alone.dtype.name}; they must give the same views, "
            "dtype included.")
    if together.shape != alone.shape or not bool(tf.reduce_all(
            tf.bitcast(together, tf.uint8) == tf.bitcast(alone, tf.uint8))):
        raise ValueError(
            f"augment {name!r}: batched(x, seeds) does not give the per-sample views "
            f"(shape {tuple(together.shape)} against {tuple(alone.shape)}, or other pixels), so "
            "the cache would replay views the teacher never saw. Make batched(x, seeds)[i] equal "
            "augment(x[i], seeds[i]), or remove the batched attribute.")

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
    views = keras_kd.teachers.caching.teacher_cache.build(
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
