"""Computing a teacher cache: one teacher pass over every view of every sample."""

import keras
import numpy as np
import tensorflow as tf

from keras_kd.losses.topk_kd import TOPK_INDICES, TOPK_VALUES, rest_key, topk_summary
from keras_kd.taps.views import LOGITS, ModelView
from keras_kd.teachers.caching import views as views_lib
from keras_kd.teachers.caching.tail import TAIL_LOW, encode_tail, tail_key
from keras_kd.teachers.caching.augment import is_pair_augment
from keras_kd.teachers.caching.replay import OUT


def _index_dtype(classes):
    """The smallest integer type that holds every class index (bytes per stored class)."""
    for dtype in (tf.uint8, tf.int16):
        if classes - 1 <= dtype.max:
            return dtype
    return tf.int32


_FINITE = "finite"  # per sample, with tail_bits: checked in `parts`, never stored


class TeacherPass:
    """One pass of the teacher over every view of every sample, part by part."""

    def __init__(self, teacher, dataset, taps, augment, views, top_k, temperatures, seed,
                 inputs=None, tail_bits=None):
        self.view = ModelView(teacher, taps, role="teacher")
        self.inputs = inputs  # the elements in memory: pair augmentations read partners there
        self.dataset, self.augment, self.views, self.seed = dataset, augment, views, seed
        self.top_k, self.temperatures, self.tail_bits = top_k, temperatures, tail_bits
        if keras.backend.backend() == "tensorflow":
            self.forward = tf.function(self._forward)
        else:
            # Another backend's teacher cannot run inside a TensorFlow graph:
            # it runs on numpy batches through Keras's compiled predict
            # function, and the summaries below run eagerly on its outputs.
            self.forward = self._forward

    def _teacher(self, flat):
        if keras.backend.backend() == "tensorflow":
            return self.view(flat, training=False)
        numpy_in = tf.nest.map_structure(lambda t: t.numpy(), flat)
        return {tap: tf.constant(value) for tap, value in self.view.predict_on_batch(numpy_in).items()}

    def _forward(self, x):
        flat = tf.nest.map_structure(lambda t: tf.reshape(t, [-1, *t.shape[2:]]), x)
        result = self._teacher(flat)
        per_view = lambda t: tf.reshape(t, [-1, self.views, *t.shape[1:]])  # noqa: E731
        outputs = {tap: per_view(value) for tap, value in result.items()}
        if self.top_k:
            logits = outputs.pop(LOGITS)
            values, indices, rest = topk_summary(
                result[LOGITS], self.top_k, () if self.tail_bits else self.temperatures)
            small = _index_dtype(logits.shape[-1])
            outputs[TOPK_VALUES] = per_view(values)
            outputs[TOPK_INDICES] = per_view(tf.cast(indices, small))
            if self.tail_bits:  # the other classes quantized: no rest mass needed
                packed, low = encode_tail(result[LOGITS], values, indices, self.tail_bits)
                outputs[tail_key(self.tail_bits, logits.shape[-1])] = per_view(packed)
                outputs[TAIL_LOW] = per_view(low)
                outputs[_FINITE] = tf.reduce_all(tf.math.is_finite(logits), axis=[1, 2])
                return outputs
            for temperature, value in rest.items():
                outputs[rest_key(temperature)] = per_view(value)
        return outputs

    def sample_bound(self, batch_size):
        """The number of samples to cache: exact when the inputs are in
        memory, else batches × `batch_size` (the last batch may hold fewer;
        None when the dataset's length is unknown)."""
        if self.inputs is not None:
            return int(tf.nest.flatten(self.inputs[0])[0].shape[0])
        batches = int(self.dataset.cardinality())
        return None if batches < 0 else batches * batch_size

    def parts(self, start, part_size, batch_size):
        """Yields dicts of numpy arrays, `part_size` samples each, from sample `start`."""
        def prepare(index, element):
            x = views_lib.features(element)
            stacked, seeds, hashes = views_lib.make_views(
                x, index, self.views, self.seed, self.augment,
                partner=self.partner if is_pair_augment(self.augment) else None)
            return index, stacked, seeds, hashes, views_lib.fingerprint_sample(x)

        if self.inputs is None:
            samples = self.dataset.unbatch().enumerate()
        else:
            features = tf.nest.map_structure(tf.constant, self.inputs[0])
            count = int(tf.nest.flatten(features)[0].shape[0])
            take = lambda i: tf.nest.map_structure(lambda t: tf.gather(t, i), features)  # noqa: E731
            self.partner = lambda seed: take(self.augment.partner(seed, count))  # noqa: E731
            samples = tf.data.Dataset.range(count).map(lambda i: (i, take(i)))
        pipe = (samples.skip(start)
                .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(batch_size).prefetch(tf.data.AUTOTUNE))
        pending, count = [], 0
        for index, stacked, seeds, hashes, sample_hash in pipe:
            outputs = self.forward(stacked)
            finite = outputs.pop(_FINITE, None)
            if finite is not None and not bool(tf.reduce_all(finite)):
                bad = index.numpy()[~finite.numpy()]
                raise ValueError(
                    f"tail_bits needs finite teacher logits, but the teacher's logits hold inf "
                    f"or NaN for {bad.size} sample(s) of this batch, the first at index "
                    f"{int(bad[0])} (a masked class?). Cache with top_k alone, or without top_k.")
            chunk = {"index": index.numpy(), "sample_hash": sample_hash.numpy(),
                     "view_seeds": seeds.numpy(), "view_hash": hashes.numpy()}
            chunk.update({OUT + k: v.numpy() for k, v in outputs.items()})
            pending.append(chunk)
            count += len(chunk["index"])
            while count >= part_size:
                merged = {k: np.concatenate([c[k] for c in pending]) for k in pending[0]}
                yield {k: v[:part_size] for k, v in merged.items()}
                rest = {k: v[part_size:] for k, v in merged.items()}
                count -= part_size
                pending = [rest] if count else []
        if count:
            yield {k: np.concatenate([c[k] for c in pending]) for k in pending[0]}


def read_inputs(dataset, limit):
    """One pass: per-sample fingerprints, and the elements as numpy (None past `limit` bytes)."""
    hashes, batches, size = [], [], 0
    for element in dataset:
        parts = tuple(element) if isinstance(element, (tuple, list)) else (element,)
        hashes.append(views_lib.fingerprint_batch(parts[0]).numpy())
        if batches is not None:
            leaves = tf.nest.map_structure(lambda t: t.numpy(), parts)
            size += sum(leaf.nbytes for leaf in tf.nest.flatten(leaves))
            batches = None if limit is not None and size > limit else batches + [leaves]
    inputs = None if not batches else tf.nest.map_structure(
        lambda *leaves: np.concatenate(leaves), *batches)
    return np.concatenate(hashes), inputs
