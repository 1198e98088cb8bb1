"""Flags shared by the commands that train many runs (`keras-kd bench`, `keras-kd tune`)."""


def add_run_flags(parser, output_help, live_teacher_help):
    """`--data-dir`, `--output-dir`, `--live-teacher` and `--quiet`."""
    parser.add_argument("--data-dir", default=None, help="where to look first for the dataset")
    parser.add_argument("--output-dir", default=None, help=output_help)
    parser.add_argument("--live-teacher", action="store_true",
                        help="run the teacher live for the logit methods too (default: "
                        + live_teacher_help + ")")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
