#!/usr/bin/env python
"""How long `keras-kd --help` (and each command's `--help`, `--version`)
takes, each in a fresh interpreter.

    python benchmarks/cli_startup.py --rounds 7
    python benchmarks/cli_startup.py --rounds 7 --compare /path/to/another/checkout

Runs `python -m keras_kd.tools.cli ARGS` with the checkout first on
`PYTHONPATH` (this one, and with `--compare` another one, e.g. a worktree of
an older commit, alternated round by round so both see the same machine
state) and prints the median and min-max of each. The test of the same
property (tests/tools/test_cli_startup.py) checks `sys.modules`, not time.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = (["--help"], ["demo", "--help"], ["distill", "--help"], ["bench", "--help"],
            ["tune", "--help"], ["--version"])


def timed(root, argv):
    env = dict(os.environ, PYTHONPATH=root)
    env.pop("KERAS_BACKEND", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "keras_kd.tools.cli", *argv], cwd=root,
                          env=env, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds if done.returncode == 0 else None  # None: the checkout lacks that command


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", default=None, help="another checkout to time alongside")
    parser.add_argument("--commands", default="all", help="'all' or 'help' (--help only)")
    args = parser.parse_args(argv)
    roots = [HERE] + ([os.path.abspath(args.compare)] if args.compare else [])
    commands = COMMANDS if args.commands == "all" else COMMANDS[:1]
    times = {(root, tuple(c)): [] for root in roots for c in commands}
    for _ in range(args.rounds):
        for command in commands:
            for root in roots:
                times[(root, tuple(command))].append(timed(root, command))
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds; median (min-max) s")
    for (root, command), values in times.items():
        label = f"{root}: keras-kd {' '.join(command)}"
        if None in values:
            print(f"{label:70s} fails in this checkout")
            continue
        print(f"{label:70s} {statistics.median(values):6.2f} "
              f"({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
