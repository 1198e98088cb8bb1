"""Retrains the teacher shipped in saved_models/digits_teacher.keras.

    python examples/train_digits_teacher.py [--out saved_models/digits_teacher.keras]

Same seed, same data, op determinism on: the weights are reproducible on the
same machine and library versions. The file is written without optimizer
state (the teacher is only ever used frozen). An existing file is not
replaced unless --overwrite is given.
"""

import argparse
import os

import keras
import tensorflow as tf

from keras_kd import datasets
from keras_kd.tools.demo import train_teacher


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="saved_models/digits_teacher.keras")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if os.path.exists(args.out) and not args.overwrite:
        raise SystemExit(f"{args.out} exists; pass --overwrite to replace it.")
    tf.config.experimental.enable_op_determinism()
    x_train, y_train = datasets.load("digits", "train", as_numpy=True)
    x_test, y_test = datasets.load("digits", "test", as_numpy=True)
    teacher = train_teacher(x_train, y_train, epochs=args.epochs, seed=args.seed)
    _, accuracy = teacher.evaluate(x_test, y_test, verbose=0)
    print(f"teacher test accuracy: {accuracy:.4f} ({teacher.count_params():,} params)")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    # An uncompiled copy keeps the archive small and free of training state.
    plain = keras.models.clone_model(teacher)
    plain.set_weights(teacher.get_weights())
    plain.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
