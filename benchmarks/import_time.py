#!/usr/bin/env python
"""keras_kd ready to use against `import keras`, each in a fresh interpreter.

    python benchmarks/import_time.py --rounds 7

`import keras_kd` alone imports nothing heavy since 0.3 (the package is
lazy), so the keras_kd side is `import keras_kd; keras_kd.Distiller;
keras_kd.losses`: what a script pays before its first line of work.
Alternates the two round by round (the same machine state for both) and
prints the medians and the median of the per-round ratios, with min–max.
The default backend (TensorFlow) is used, as a user gets it.
"""

import argparse
import statistics
import subprocess
import sys
import time


def timed(code):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    keras_s, kd_s, ratios = [], [], []
    for _ in range(args.rounds):
        keras_s.append(timed("import keras"))
        kd_s.append(timed("import keras_kd; keras_kd.Distiller; keras_kd.losses"))
        ratios.append(kd_s[-1] / keras_s[-1])
    print(f"import keras     {statistics.median(keras_s):.2f} s (median of {args.rounds})")
    print(f"keras_kd ready   {statistics.median(kd_s):.2f} s")
    print(f"ratio            {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
