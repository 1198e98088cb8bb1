"""The `keras-kd` command line.

Nothing heavy is imported until a command runs: `keras-kd --help`, each
command's `--help` and `--version` import neither Keras nor TensorFlow (the
package is lazy, and each command's flags live in a module of their own).
A command that fails at run time prints one line, the error, and the path
of a log holding the whole traceback.
"""

import argparse
import importlib
import os
import sys
import tempfile
import traceback

import keras_kd


def _demo(args):
    from keras_kd.tools import demo

    try:
        demo.run(
            epochs=args.epochs,
            temperature=args.temperature,
            student_loss_weight=args.student_loss_weight,
            output_dir=args.output_dir,
            teacher_path=args.teacher,
            seed=args.seed,
            batch_size=args.batch_size,
            verbose=0 if args.quiet else (2 if args.verbose else 1),
        )
    except FileNotFoundError as error:
        print(f"keras-kd demo: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001  (reported in one line, logged in full)
        return _failed("demo", error)
    return 0


def _distill(args):
    if args.validate_only and "keras" not in sys.modules:
        # Validating builds no tensor: it checks the file and instantiates
        # the terms. Keras's numpy backend does that without importing
        # TensorFlow; a backend the user chose explicitly is kept.
        os.environ.setdefault("KERAS_BACKEND", "numpy")
    from keras_kd.tools.config import validate as config

    overrides = list(args.set or [])
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    try:
        cfg = config.load(args.config, overrides=overrides, check_files=not args.no_file_checks)
    except config.ConfigError as error:
        print(f"keras-kd distill: {error}", file=sys.stderr)
        return 2
    if args.validate_only:
        unchecked = " (files not checked)" if args.no_file_checks else ""
        print(f"{args.config}: valid{unchecked} (config hash {config.config_hash(cfg)}).")
        return 0
    from keras_kd.tools.run import runner as run_config

    try:
        run_config.run(cfg, overwrite=args.overwrite, verbose=0 if args.quiet else 1,
                       search_path=[os.path.dirname(os.path.abspath(args.config))])
    except (config.ConfigError, FileExistsError) as error:
        print(f"keras-kd distill: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001  (reported in one line, logged in full)
        return _failed("distill", error, cfg["output_dir"])
    return 0


def _failed(command, error, output_dir=None):
    """Prints one line, the error and where its traceback is, and returns 1.

    The traceback goes to `OUTPUT_DIR/error.log` when the run's output folder
    exists, else to a new file in the temporary folder."""
    from keras_kd.tools.run.output import ERROR_LOG

    text = "".join(traceback.format_exception(error))
    log = None
    if output_dir and os.path.isdir(output_dir):
        log = os.path.join(output_dir, ERROR_LOG)
        try:
            with open(log, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError:
            log = None
    if log is None:
        handle, log = tempfile.mkstemp(prefix=f"keras-kd-{command}-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
    message = (str(error).strip().splitlines() or [""])[0]
    print(f"keras-kd {command}: {type(error).__name__}: {message} (full traceback: {log})",
          file=sys.stderr)
    return 1


def _add_distill(commands):
    distill = commands.add_parser(
        "distill",
        help="train a student (or a teacher) from a YAML/TOML run config",
        description="Validates the whole config, then trains with progress bars and "
        "TensorBoard (OUTPUT_DIR/logs), resumes when re-run after an interruption "
        "(OUTPUT_DIR/backup), evaluates on the test split, writes "
        "OUTPUT_DIR/results.json and exports the student. Schema: docs/config.md.",
    )
    distill.add_argument("config", help="the run config (.yaml, .yml or .toml)")
    distill.add_argument("--set", action="append", metavar="KEY=VALUE",
                         help="override a key, e.g. --set dataset.batch_size=32 or "
                         "--set terms[0].weight=0.5 (value read as YAML; repeatable)")
    distill.add_argument("--epochs", type=int, default=None, help="override epochs")
    distill.add_argument("--output-dir", default=None, help="override output_dir")
    distill.add_argument("--validate-only", action="store_true",
                         help="check the config and exit (0 valid, 2 invalid); dataset names "
                         "are checked without downloading anything")
    distill.add_argument("--no-file-checks", action="store_true",
                         help="do not require the files the config names (a teacher .keras "
                         "an earlier run will export, ...) to exist yet")
    distill.add_argument("--overwrite", action="store_true",
                         help="discard a previous run in output_dir and replace exports")
    distill.add_argument("--quiet", action="store_true", help="no progress bars")
    distill.set_defaults(handler=_distill)


def _tool_command(name, package, summary, description, errors):
    """A subcommand of `keras_kd.tools.<package>`: its flags come from
    `<package>.arguments.add_arguments(parser)` (no Keras import), its run
    from `<package>.command.from_args(args)`. The listed errors print
    cleanly and exit with 2; any other prints one line and logs the rest."""

    def handler(args):
        try:
            _tool_module(f"{package}.command").from_args(args)
        except errors as error:
            print(f"keras-kd {name}: {error}", file=sys.stderr)
            return 2
        except Exception as error:  # noqa: BLE001  (reported in one line, logged in full)
            return _failed(name, error, getattr(args, "output_dir", None))
        return 0

    def add(commands):
        parser = commands.add_parser(name, help=summary, description=description)
        _tool_module(f"{package}.arguments").add_arguments(parser)
        parser.set_defaults(handler=handler)

    return add


def _tool_module(name):
    # Each tool's command is imported when its subcommand runs, so `keras-kd
    # demo` does not pay for KerasTuner, nor `--help` for Keras.
    return importlib.import_module(f"keras_kd.tools.{name}")


_add_bench = _tool_command(
    "bench", "bench",
    "every distillation method vs the scratch student, over seeds",
    "Loads (or trains) the pair's teacher, trains the scratch student and "
    "the student under each method for every seed, and writes report.md, report.png "
    "and TensorBoard runs to OUTPUT_DIR. Results are saved per seed as they finish, "
    "so re-running the same command resumes.",
    (ValueError, FileNotFoundError),
)
_add_tune = _tool_command(
    "tune", "tune",
    "search a method's hyperparameters on a validation split (KerasTuner)",
    "Carves a validation split out of the TRAINING split (the test split is "
    "never read), runs a KerasTuner search over the method's hyperparameters, and writes "
    "OUTPUT_DIR/best.yaml (a run config for keras-kd distill) and OUTPUT_DIR/trials.md. "
    "Re-running the same command resumes. Needs keras-tuner.",
    (ValueError, FileNotFoundError, ImportError),  # ConfigError is a ValueError
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-kd",
        description="Knowledge distillation for Keras 3 (TensorFlow, JAX and PyTorch).",
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {keras_kd.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="distil the shipped digits teacher into a small student, offline",
        description="Trains a small student from scratch and the same student "
        "distilled from the shipped teacher on the embedded digits data, "
        "writes TensorBoard logs, exports the student and prints a table.",
    )
    demo.add_argument("--epochs", type=int, default=120, help="epochs per student (default 120)")
    demo.add_argument("--temperature", type=float, default=4.0, help="KD temperature T (default 4)")
    demo.add_argument("--student-loss-weight", type=float, default=1.0,
                      help="weight of the hard-label loss (default 1.0)")
    demo.add_argument("--output-dir", default="kd_demo",
                      help="where each run writes a new timestamped folder (default kd_demo)")
    demo.add_argument("--teacher", default=None,
                      help="teacher .keras file (default: ./saved_models/digits_teacher.keras, "
                      "else the copy shipped in the package)")
    demo.add_argument("--seed", type=int, default=0, help="seed for both students (default 0)")
    demo.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    output = demo.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="no progress bars")
    output.add_argument("--verbose", action="store_true",
                        help="a line per epoch instead of one progress bar per student")
    demo.set_defaults(handler=_demo)
    _add_distill(commands)
    _add_bench(commands)
    _add_tune(commands)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    epochs = getattr(args, "epochs", None)
    if epochs is not None and epochs < 1:
        parser.error("--epochs must be >= 1")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
