"""The `keras-kd tune` flags.

Kept apart from the command, which imports Keras: `keras-kd tune --help`
answers without importing Keras or TensorFlow. The method name is checked
by the command (`keras_kd.zoo.recipes.METHODS`, with the known names).
"""

from keras_kd.tools.flags import add_run_flags


def add_arguments(parser):
    """Adds the `keras-kd tune` flags to `parser`."""
    parser.add_argument("--method", required=True,
                        help="the recipe whose hyperparameters are searched: a method of "
                        "keras_kd.zoo.recipes (kd, kd_ls, dist, dkd, nkd, fitnet, at, ...)")
    parser.add_argument("--dataset", required=True,
                        help="dataset name (keras_kd.datasets.load); only its training split "
                        "is read")
    parser.add_argument("--teacher", default=None, help="teacher .keras file")
    parser.add_argument("--student", required=True,
                        help="student: zoo name, .keras file or module:function")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (default 6)")
    parser.add_argument("--trials", type=int, default=10, help="trials in all (default 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--train-size", type=int, default=None,
                        help="use a fixed stratified subset of the training split")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="fraction of the training data held out for validation (0.1)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the student's initialisation and of the search")
    parser.add_argument("--algorithm", default="bayesian", choices=("bayesian", "random"))
    add_run_flags(parser, "KerasTuner project, best.yaml and trials.md (default "
                  "tune_runs/<dataset>_<method>); re-running resumes",
                  "its logits on the training part are computed once and cached")
