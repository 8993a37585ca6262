"""Command line of the companion package: ``python -m companion <command> ...``.

Commands:

* ``grade PATH [PATH ...]`` – run learners' notebooks and report one status per exercise
  (see :mod:`companion.grader`).

Exit codes: 0 success (for ``grade``: every exercise passed), 1 some exercise did not pass,
2 usage error or unreadable input (a one-line message on stderr).

To add a command, write ``_add_<name>_command(subparsers)`` that registers its parser with
``set_defaults(run=<function taking the parsed arguments and returning the exit code>)``
and call it from :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import sys

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m companion",
                     description="Companion of the Gated Memory course.")
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True,
                                       parser_class=_Parser)
    _add_grade_command(subparsers)
    return parser


def _add_grade_command(subparsers) -> None:
    from companion.grader import DEFAULT_TIMEOUT

    grade = subparsers.add_parser(
        "grade", help="run notebooks and grade their exercises",
        description=(
            "Run each notebook in a fresh kernel, on a temporary copy (nothing is written "
            "beside the submissions), and report one status per exercise: passed, failed, "
            "not started or error. Exit code 0 when every exercise passed, 1 otherwise, "
            "2 for unreadable input. Notebooks without exercise checks are listed with a "
            "note and do not change the exit code."
        ),
    )
    grade.add_argument("paths", nargs="+", metavar="PATH",
                       help="a notebook, or a folder graded recursively (every .ipynb in it, "
                            "skipping .ipynb_checkpoints)")
    grade.add_argument("--json", metavar="FILE", help="write the gradebook as JSON records")
    grade.add_argument("--csv", metavar="FILE", help="write the gradebook as CSV")
    grade.add_argument("--timeout", metavar="SECONDS", type=_positive(float),
                       default=DEFAULT_TIMEOUT,
                       help=f"time limit per cell (default {DEFAULT_TIMEOUT:g}); a cell over "
                            "it stops its notebook and the remaining exercises are errors")
    grade.add_argument("--jobs", metavar="N", type=_positive(int), default=1,
                       help="grade N notebooks at a time, in parallel processes (default 1)")
    grade.add_argument("--no-progress", action="store_true",
                       help="no progress bar on stderr")
    grade.set_defaults(run=_grade)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _grade(arguments: argparse.Namespace) -> int:
    from companion import grader

    notebooks = grader.collect_notebooks(arguments.paths)
    for notebook in notebooks:
        grader.read_notebook(notebook)  # unreadable input stops before anything runs
    reports = grader.grade_all(notebooks, timeout=arguments.timeout, jobs=arguments.jobs,
                               progress=not arguments.no_progress)
    print(grader.format_table(reports), flush=True)
    if arguments.json:
        grader.write_json(reports, arguments.json)
    if arguments.csv:
        grader.write_csv(reports, arguments.csv)
    return grader.exit_code(reports)


def main(argv: list[str] | None = None) -> int:
    from companion.grader import InputError

    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except (InputError, OSError) as error:
        print(f"python -m companion {arguments.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"python -m companion {arguments.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
