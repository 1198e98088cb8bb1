"""Top-k teacher cache: bytes against the full-logit cache, and top-k KD's error.

    nice -n 10 python benchmarks/cache_topk.py [--samples 2048]

1. CIFAR-100-sized logits: a random-weight `zoo.resnet8x4` teacher (100
   classes, seed 0) on U[0,1) 32×32×3 images; a random-weight
   `zoo.resnet8x4` student (seed 1) gives the student logits. Caches on disk
   (`teachers.caching.cache(..., path=...)`, GZIP shards): full logits vs top_k=10
   (values float32, class indices uint8 up to 256 classes, the rest mass at T = 1, 2, 4, 8).
   Bytes: the outputs alone (uncompressed arrays) and the whole cache
   directory's part files (with the per-sample index, seeds and
   fingerprints every cache holds).
2. The same KD comparison on a trained teacher's real outputs:
   saved_models/fashion_mnist_teacher.keras (10 classes) on the first
   2048 Fashion-MNIST test images, top-3 and top-5, against the
   random-weight `zoo.fmnist_student`.

KD error: |mean top-k KD − mean full KD| / mean full KD over the samples, at
T = 1, 4, 8, with top-k KD = KD on the teacher's top-k classes plus one rest
class (keras_kd.losses.topk_kd), full KD = keras_kd.losses.kd_loss. Each top-k
row is followed by the same k with a 3-bit tail (`tail_bits=3`: the other
classes quantized, keras_kd.teachers.caching.tail), whose error is that of
full KD on the logits the cache replays.
"""

import argparse
import os
import platform
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import zoo  # noqa: E402
from keras_kd.teachers.caching import store as cache_store  # noqa: E402
from keras_kd.losses.kd import kd_loss  # noqa: E402
from keras_kd.losses.topk_kd import TOPK_INDICES, TOPK_VALUES, rest_key, topk_kd_loss  # noqa: E402
from keras_kd.teachers.caching.teacher_cache import build  # noqa: E402

TEMPERATURES = (1.0, 4.0, 8.0)


def _outputs(built):
    return {k: np.concatenate([b[-1][k].numpy() for b in built.dataset(256)])
            for k in next(iter(built.dataset(256)))[-1]}


def tail_row(teacher, data, full_out, student_logits, k, bits, workdir, tag):
    """The top-k + `bits`-bit tail cache: plain KD on its replayed logits."""
    tail = build(teacher, data, top_k=k, tail_bits=bits,
                 path=os.path.join(workdir, f"{tag}_top{k}_tail{bits}"))
    replayed = _outputs(tail)["logits"]
    errors = []
    for temperature in TEMPERATURES:
        exact = np.asarray(kd_loss(full_out, student_logits, temperature)).mean()
        approx = np.asarray(kd_loss(replayed, student_logits, temperature)).mean()
        errors.append((temperature, exact, abs(approx - exact) / exact))
    stored = sum(v.nbytes for key, v in tail._arrays.items() if key.startswith("out:"))
    return (f"{k} + {bits}-bit tail", errors, stored, cache_store.disk_bytes(tail.path), None)


def kd_errors(teacher, student, data, x, ks, workdir, tag, tail_bits=3):
    full = build(teacher, data, path=os.path.join(workdir, f"{tag}_full"))
    full_out = _outputs(full)["logits"]
    student_logits = student.predict(x, batch_size=256, verbose=0)
    rows = []
    for k in ks:
        topk = build(teacher, data, top_k=k, temperatures=(1.0, 2.0, 4.0, 8.0),
                     path=os.path.join(workdir, f"{tag}_top{k}"))
        out = _outputs(topk)
        errors = []
        for temperature in TEMPERATURES:
            exact = np.asarray(kd_loss(full_out, student_logits, temperature))
            approx = np.asarray(topk_kd_loss(out[TOPK_VALUES], out[TOPK_INDICES],
                                                   out[rest_key(temperature)], student_logits,
                                                   temperature))
            errors.append((temperature, exact.mean(), abs(approx.mean() - exact.mean()) / exact.mean()))
        mass = []
        for temperature in (1.0, 4.0):
            teacher_p = tf.nn.softmax(full_out / temperature).numpy()
            mass.append(float(np.median(np.sort(teacher_p, axis=1)[:, ::-1][:, :k].sum(axis=1))))
        outputs_bytes = sum(v.nbytes for v in out.values())
        rows.append((k, errors, outputs_bytes, cache_store.disk_bytes(topk.path), mass))
        if k < full_out.shape[-1] - 1:
            rows.append(tail_row(teacher, data, full_out, student_logits, k, tail_bits, workdir, tag))
    return full_out.nbytes, cache_store.disk_bytes(full.path), rows


def table(title, full_bytes, full_disk, rows):
    lines = [f"### {title}", "",
             "| cache | outputs bytes (÷ full) | part files on disk (÷ full) | teacher's top-k mass, median, T=1 / T=4 | KD rel. error T=1 | T=4 | T=8 |",
             "|---|---:|---:|---:|---:|---:|---:|",
             f"| full logits | {full_bytes:,} (1.000) | {full_disk:,} (1.000) | 1 / 1 | 0 | 0 | 0 |"]
    for k, errors, out_bytes, disk, mass in rows:
        err = " | ".join(f"{e * 100:.3f}%" for _, _, e in errors)
        shown = "(as above)" if mass is None else f"{mass[0]:.3f} / {mass[1]:.3f}"
        lines.append(f"| top-{k} | {out_bytes:,} ({out_bytes / full_bytes:.3f}) | {disk:,} "
                     f"({disk / full_disk:.3f}) | {shown} | {err} |")
    kd = ", ".join(f"T={t:g}: {v:.4f}" for t, v, _ in rows[0][1])
    lines += ["", f"Full KD (mean over samples) {kd}."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2048)
    args = parser.parse_args()
    n = args.samples
    blocks = []
    with tempfile.TemporaryDirectory() as workdir:
        keras.utils.set_random_seed(0)
        teacher = zoo.resnet8x4(num_classes=100)
        keras.utils.set_random_seed(1)
        student = zoo.resnet8x4(num_classes=100)
        x = np.random.default_rng(0).random((n, 32, 32, 3), dtype=np.float32)
        data = tf.data.Dataset.from_tensor_slices(x).batch(128)
        blocks.append(table(f"Random-weight resnet8x4 teacher, 100 classes, {n} U[0,1) images",
                            *kd_errors(teacher, student, data, x, (10,), workdir, "r8x4")))
        teacher_file = os.path.join(REPO, "saved_models", "fashion_mnist_teacher.keras")
        if os.path.exists(teacher_file):
            fm_teacher = keras.saving.load_model(teacher_file)
            xf, _ = keras_kd.datasets.load("fashion_mnist", "test", as_numpy=True)
            xf = xf[:n].astype(np.float32)
            if xf.ndim == 3:
                xf = xf[..., None]
            keras.utils.set_random_seed(1)
            fm_student = zoo.fmnist_student()
            fdata = tf.data.Dataset.from_tensor_slices(xf).batch(128)
            blocks.append(table(f"Trained Fashion-MNIST teacher ({os.path.relpath(teacher_file, REPO)}), "
                                f"10 classes, {n} test images", *kd_errors(
                                    fm_teacher, fm_student, fdata, xf, (3, 5), workdir, "fmnist")))
    print(f"Command: `nice -n 10 python benchmarks/cache_topk.py --samples {n}`; Python "
          f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}.\n")
    print("\n\n".join(blocks))


if __name__ == "__main__":
    main()
