"""Command line of the companion package: ``python -m companion <command> ...``.

Commands:

* ``grade PATH [PATH ...]`` – run learners' notebooks and report one status per exercise
  (see :mod:`companion.grading`);
* ``autograder LESSON --out DIR`` – write a Gradescope autograder folder for one lesson.

Exit codes: 0 success (for ``grade``: every exercise passed), 1 some exercise did not pass,
2 usage error (a one-line message on stderr) or, for ``grade``, some input could not be
graded (reported in its rows, after grading the rest).

To add a command, write ``_add_<name>_command(subparsers)`` that registers its parser with
``set_defaults(run=<function taking the parsed arguments and returning the exit code>)``
and call it from :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

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
    _add_autograder_command(subparsers)
    return parser


def _add_grade_command(subparsers) -> None:
    from companion.grading.run import DEFAULT_TIMEOUT, NOTEBOOK_TIMEOUT_FACTOR

    grade = subparsers.add_parser(
        "grade", help="run notebooks and grade their exercises",
        description=(
            "Run each notebook in a fresh kernel, in its own process and temporary folder "
            "(nothing is written beside the submissions), have the kernel evaluate the "
            "learner's functions on the grader's random cases, and judge the results in the "
            "grader's own process. One row per exercise of the notebook's lesson: passed, "
            "failed, not started or error. Exit code 0 when every exercise passed, 1 "
            "otherwise, 2 when some input could not be graded (after grading the rest) or "
            "for a usage error."
        ),
    )
    grade.add_argument("paths", nargs="+", metavar="PATH",
                       help="a notebook, or a folder graded recursively (every .ipynb in it, "
                            "skipping .ipynb_checkpoints)")
    grade.add_argument("--json", metavar="FILE", help="write the gradebook as JSON records")
    grade.add_argument("--csv", metavar="FILE", help="write the gradebook as CSV")
    grade.add_argument("--gradescope", metavar="FILE",
                       help="write Gradescope's results.json format")
    grade.add_argument("--timeout", metavar="SECONDS", type=_positive(float),
                       default=DEFAULT_TIMEOUT,
                       help=f"time limit per cell (default {DEFAULT_TIMEOUT:g}); a cell over "
                            "it is interrupted and the next cell runs")
    grade.add_argument("--notebook-timeout", metavar="SECONDS", type=_positive(float),
                       help="time limit for a whole notebook (default "
                            f"{NOTEBOOK_TIMEOUT_FACTOR} x --timeout)")
    grade.add_argument("--memory", metavar="MB", type=_positive(int),
                       help="cap each kernel's memory (address space) at MB megabytes")
    grade.add_argument("--sandbox", action="store_true",
                       help="run each kernel under bubblewrap: no network, read-only system, "
                            "writes only to its temporary folder, process and file-size limits")
    grade.add_argument("--lesson", metavar="ID",
                       help="grade notebooks of this lesson only (others are errors)")
    grade.add_argument("--exercise", metavar="ID",
                       help="grade this exercise only; exit 0 only if it passed")
    grade.add_argument("--jobs", metavar="N", type=_positive(int), default=1,
                       help="grade N notebooks at a time, in parallel processes (default 1)")
    grade.add_argument("--no-progress", action="store_true",
                       help="no progress bar on stderr")
    grade.set_defaults(run=_grade)


def _add_autograder_command(subparsers) -> None:
    autograder = subparsers.add_parser(
        "autograder", help="write a Gradescope autograder folder for one lesson",
        description=(
            "Write a Gradescope autograder folder (setup.sh, run_autograder, the pinned "
            "requirements and this companion package) that grades "
            "$AUTOGRADER_ROOT/submission/*.ipynb (default root /autograder) into "
            "$AUTOGRADER_ROOT/results/results.json. Zip the folder's contents and upload."
        ),
    )
    autograder.add_argument("lesson", metavar="LESSON",
                            help="the lesson id, e.g. 00_warmup (or its notebook's path)")
    autograder.add_argument("--out", metavar="DIR", required=True,
                            help="the folder to write (created; must be empty if it exists)")
    autograder.add_argument("--timeout", metavar="SECONDS", type=_positive(float),
                            default=DEFAULT_AUTOGRADER_TIMEOUT,
                            help="per-cell time limit passed to the grader")
    autograder.set_defaults(run=_autograder)


DEFAULT_AUTOGRADER_TIMEOUT = 120.0


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _grade(arguments: argparse.Namespace) -> int:
    import time

    from companion import grader
    from companion.grading.sandbox import SandboxUnavailable, check_available

    started = time.monotonic()
    inputs = [Path(path) for path in arguments.paths]
    outputs = {}
    for option in ("json", "csv", "gradescope"):
        path = getattr(arguments, option)
        if path:
            outputs[option] = grader.check_output_path(f"--{option}", path, inputs)
    real = [os.path.realpath(path) for path in outputs.values()]
    if len(set(real)) != len(real):
        raise grader.OutputError("--json, --csv and --gradescope must be different files")
    _check_ids(arguments)
    if arguments.sandbox:
        try:
            check_available()
        except SandboxUnavailable as error:
            raise grader.OutputError(str(error)) from None
    options = grader.Options(
        timeout=arguments.timeout, notebook_timeout=arguments.notebook_timeout,
        memory=arguments.memory, sandbox=arguments.sandbox, jobs=arguments.jobs,
        lesson=arguments.lesson, exercise=arguments.exercise)
    submissions = grader.collect(arguments.paths)

    def write(reports):
        from companion.grading.output import write_atomically

        texts = {"json": grader.json_text, "csv": grader.csv_text,
                 "gradescope": lambda r: grader.gradescope_text(r, time.monotonic() - started)}
        for option, path in outputs.items():
            write_atomically(path, texts[option](reports))

    write([])  # the files exist (empty gradebooks) before anything runs
    reports = grader.grade_all(submissions, options, on_report=write,
                               progress=not arguments.no_progress, own_process=True)
    write(reports)
    print(grader.format_table(reports), flush=True)
    return grader.exit_code(reports, arguments.exercise)


def _check_ids(arguments) -> None:
    from companion import exercises, grader

    if arguments.lesson and arguments.lesson not in grader.lesson_ids():
        raise grader.OutputError(f"--lesson {arguments.lesson}: unknown lesson; known: "
                                 f"{', '.join(grader.lesson_ids())}")
    if arguments.exercise and arguments.exercise not in exercises.ids():
        raise grader.OutputError(f"--exercise {arguments.exercise}: unknown exercise; known: "
                                 f"{', '.join(exercises.ids())}")


def _autograder(arguments: argparse.Namespace) -> int:
    from companion.grading.autograder import write_autograder

    folder = write_autograder(arguments.lesson, arguments.out, timeout=arguments.timeout)
    print(f"wrote the Gradescope autograder for lesson {arguments.lesson} into {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from companion.grading.output import OutputError

    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    arguments = build_parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except (OutputError, OSError, ValueError) as error:
        print(f"python -m companion {arguments.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"python -m companion {arguments.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
