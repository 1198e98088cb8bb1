"""The `keras-kd` command line."""

import argparse
import sys


def _demo(args):
    from keras_kd import demo

    demo.run(
        epochs=args.epochs,
        temperature=args.temperature,
        student_loss_weight=args.student_loss_weight,
        output_dir=args.output_dir,
        teacher_path=args.teacher,
        seed=args.seed,
        batch_size=args.batch_size,
        verbose=0 if args.quiet else 1,
    )
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-kd",
        description="Knowledge distillation for Keras 3 on TensorFlow.",
    )
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
                      help="teacher .keras file (default saved_models/digits_teacher.keras)")
    demo.add_argument("--seed", type=int, default=0, help="seed for both students (default 0)")
    demo.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if getattr(args, "epochs", 1) < 1:
        parser.error("--epochs must be >= 1")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
