"""Every distillation method against the scratch student, over seeds.

The same as `keras-kd bench` (see `keras_kd/bench.py` for what it measures):

    python benchmarks/methods.py --pair digits-cnn --seeds 0,1,2
    python benchmarks/methods.py --pair fmnist-cnn --methods kd,fitnet,fsp,overhaul,review,at,dkd,nkd

Re-running with the same --output-dir resumes; results per seed are saved
as they finish.
"""

import sys

from keras_kd.tools.bench import command as bench

if __name__ == "__main__":
    sys.exit(bench.main(sys.argv[1:]))
