"""The `keras-kd bench` flags (also `benchmarks/methods.py`'s).

Kept apart from the command, which imports Keras: `keras-kd bench --help`
answers without importing Keras or TensorFlow.
"""

from keras_kd.tools.bench.pairs import PAIRS
from keras_kd.tools.flags import add_run_flags


def add_arguments(parser):
    """Adds the `keras-kd bench` flags to `parser`."""
    parser.add_argument("--pair", default="digits-cnn", choices=sorted(PAIRS),
                        help="teacher/student pair and dataset (default digits-cnn)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods of keras_kd.zoo.recipes, e.g. kd,dkd,fitnet "
                        "(default: all; scratch is always run)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--epochs", type=int, default=None, help="student epochs (pair default)")
    parser.add_argument("--teacher-epochs", type=int, default=None,
                        help="epochs when the teacher must be trained (pair default)")
    parser.add_argument("--batch-size", type=int, default=None, help="batch size (pair default)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="train the students on a fixed stratified subset of this size "
                        "(pair default; 0 = the whole training set)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--temperature", type=float, default=4.0,
                        help="KD temperature (the other recipes use their own T)")
    parser.add_argument("--teacher", default=None, help="teacher .keras file (default: "
                        "./saved_models/<pair teacher file>, the copy shipped in the package "
                        "for digits-cnn, else trained)")
    parser.add_argument("--validation-split", type=float, default=None, metavar="FRACTION",
                        help="hold this fraction of the students' training data out as a "
                        "validation set (stratified, fixed), logged every epoch; the test "
                        "accuracy is measured as without it")
    add_run_flags(parser, "results, report and TensorBoard logs (default bench_runs/<pair>); "
                  "re-running with the same folder resumes",
                  "its logits are computed once and read from a per-sample cache")
