"""The grader's outputs: the terminal table, the JSON / CSV gradebook and Gradescope's
``results.json``, each file written atomically (a temporary file, then a rename)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from companion.grading.run import NOT_STARTED, PASSED, Report, Row

RECORD_FIELDS = ("notebook", "exercise", "status", "points", "points_possible", "message")


class OutputError(Exception):
    """An output path that cannot be written (checked before anything runs)."""


def check_output_path(option: str, path: str, inputs: list[Path]) -> Path:
    """``path`` if the grader can write a file there: not a folder, its folder exists and
    is writable, an existing file is writable, and it is none of the inputs."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{option} {path}: is a folder, expected a file name")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{option} {path}: its folder {folder} does not exist")
    try:  # really create a file there: os.access says yes to root, even on /proc
        handle, probe = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise OutputError(f"{option} {path}: its folder {folder} is not writable "
                          f"({error.strerror or error})") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{option} {path}: the file is not writable")
    resolved = os.path.realpath(target)
    for source in inputs:
        real = os.path.realpath(source)
        if resolved == real or (os.path.isdir(real) and resolved.startswith(real + os.sep)
                                and resolved.endswith(".ipynb")):
            raise OutputError(f"{option} {path}: is one of the notebooks to grade")
    return target


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a
    rename: readers see the old file or the new one, never half of one."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # as open() would create it, not mkstemp's 0600
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, for
    every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def records(reports: list[Report]) -> list[dict]:
    """One gradebook record per exercise per notebook (see :data:`RECORD_FIELDS`)."""
    return [row.as_record() for report in reports for row in report.rows]


def json_text(reports: list[Report]) -> str:
    return json.dumps(records(reports), indent=1, ensure_ascii=False) + "\n"


def csv_text(reports: list[Report]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RECORD_FIELDS)
    writer.writeheader()
    writer.writerows(records(reports))
    return buffer.getvalue()


def gradescope_text(reports: list[Report], seconds: float) -> str:
    """Gradescope's ``results.json``: the total score, and one test per exercise (per
    notebook when there are several) with its score, status and message."""
    several = len(reports) > 1
    tests = []
    for report in reports:
        for row in report.rows:
            name = row.exercise or "notebook"
            tests.append({
                "name": f"{report.notebook}: {name}" if several else name,
                "score": row.points, "max_score": row.points_possible,
                "status": "passed" if row.status == PASSED else "failed",
                "output": f"{row.status}: {row.message}" if row.message else row.status,
                "execution_time": round(row.seconds, 3),
            })
    score = sum(test["score"] for test in tests)
    return json.dumps({"score": score, "execution_time": round(seconds, 3), "tests": tests,
                       "output": f"{score}/{sum(t['max_score'] for t in tests)} points"},
                      indent=1, ensure_ascii=False) + "\n"


# --- the terminal table --------------------------------------------------------------------


def format_table(reports: list[Report], width: int | None = None) -> str:
    """Per notebook: a header with its points, then one line per exercise (exercise,
    points earned/possible, status, first line of the message); then the totals."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    rows = [row for report in reports for row in report.rows]
    id_width = max([len("exercise"), *(len(row.exercise) for row in rows)])
    points_width = max([len("points"), *(len(_points(row)) for row in rows)])
    status_width = len(NOT_STARTED)
    message_width = max(30, width - id_width - points_width - status_width - 8)
    lines = []
    for report in reports:
        lines += _notebook_lines(report, (id_width, points_width, status_width, message_width))
    lines.append(_totals(reports))
    return "\n".join(lines)


def _notebook_lines(report: Report, widths: tuple[int, int, int, int]) -> list[str]:
    if report.input_error:
        return [f"{report.notebook}: error: {report.rows[0].message}", ""]
    earned = sum(row.points for row in report.rows)
    possible = sum(row.points_possible for row in report.rows)
    id_width, points_width, status_width, message_width = widths
    lines = [f"{report.notebook}: {earned}/{possible} points",
             f"  {'exercise':<{id_width}}  {'points':<{points_width}}  "
             f"{'status':<{status_width}}  message"]
    for row in report.rows:
        lines.append(
            f"  {row.exercise:<{id_width}}  {_points(row):<{points_width}}  "
            f"{row.status:<{status_width}}  {short_message(row.message, message_width)}"
        )
    return [*lines, ""]


def _points(row: Row) -> str:
    return f"{row.points}/{row.points_possible}"


def short_message(message: str, width: int = 60) -> str:
    """The first line of a message, cut to ``width`` characters (ending in "…" if cut)."""
    lines = str(message).strip().splitlines()
    first = lines[0] if lines else ""
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def _totals(reports: list[Report]) -> str:
    rows = [row for report in reports if not report.input_error for row in report.rows]
    passed = sum(row.status == PASSED for row in rows)
    earned = sum(row.points for row in rows)
    possible = sum(row.points_possible for row in rows)
    broken = sum(report.input_error for report in reports)
    note = f" ({broken} could not be graded)" if broken else ""
    return (f"Total: {earned}/{possible} points; {passed} of {len(rows)} exercises passed "
            f"in {len(reports)} notebook{'s' if len(reports) != 1 else ''}{note}")
