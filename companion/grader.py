"""Grade learners' notebooks: one status per exercise, for learners and instructors.

Each notebook is run in a fresh ``python3`` kernel, in a worker process, on a temporary
copy in a temporary folder (also the kernel's working directory): nothing is ever written
beside or into a submission. Every cell runs, even after errors, so that a crash in one
cell does not hide the exercises whose checks still ran.

Exercises are found from the notebook's check cells (``check("sigmoid", sigmoid)``, also
``exercises.check(...)``). Each gets one status:

* ``passed``, ``failed`` (with the check's message) or ``not started``, as recorded by
  :func:`companion.exercises.check`;
* ``error``: its check never recorded a result because a cell crashed (a syntax error in
  the def cell gives a NameError in the check cell), a cell exceeded the time limit, or the
  kernel died; the message says which cell and what.

Outcomes are read from each check cell's outputs as it runs (so statuses recorded before a
timeout or a dead kernel survive) and, when the notebook runs to the end, from
:func:`companion.exercises.results` in the kernel, which is authoritative.

The grader is not a sandbox: it runs the learner's code with the grader's permissions.
Command line: ``python -m companion grade PATH [PATH ...]`` (see :mod:`companion.__main__`).
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from tqdm import tqdm

from companion import exercises

PASSED = "passed"
FAILED = "failed"
NOT_STARTED = "not started"
ERROR = "error"

DEFAULT_TIMEOUT = 120.0
RECORD_FIELDS = ("notebook", "exercise", "status", "points", "points_possible", "message")

_CHECK_CALL = re.compile(r"""\bcheck\(\s*(["'])([A-Za-z_][\w.-]*)\1""")
_PASSED_LINE = re.compile(r"^✓ (\S+): passed(?: — (.*))?$", re.MULTILINE)
_NOT_STARTED_LINE = re.compile(r"^… (\S+): (not started[^.]*\.)", re.MULTILINE)
_RESULTS_MARKER = "@@companion-grader-results@@"
_RESULTS_SOURCE = f"""\
def _companion_grader_results():
    import json
    from companion.exercises import results
    print({_RESULTS_MARKER!r} + json.dumps(results()))
_companion_grader_results()
"""


class InputError(Exception):
    """A path that cannot be graded: missing, not a notebook, or not valid notebook JSON."""


@dataclass(frozen=True)
class Row:
    """The grade of one exercise in one notebook; ``points`` are the points earned."""

    notebook: str
    exercise: str
    status: str
    points: int
    points_possible: int
    message: str

    def as_record(self) -> dict:
        return {name: getattr(self, name) for name in RECORD_FIELDS}


@dataclass
class Report:
    """The grades of one notebook; ``note`` explains a notebook without exercises."""

    notebook: str
    rows: list[Row] = field(default_factory=list)
    note: str = ""


# --- finding notebooks and their checks --------------------------------------------------


def collect_notebooks(paths: list[str]) -> list[Path]:
    """The notebooks to grade: each file given, and every ``.ipynb`` under each folder
    (recursively, skipping ``.ipynb_checkpoints``), without duplicates, in a stable order."""
    notebooks: list[Path] = []
    for argument in paths:
        path = Path(argument)
        if path.is_dir():
            found = sorted(
                candidate for candidate in path.rglob("*.ipynb")
                if candidate.is_file() and ".ipynb_checkpoints" not in candidate.parts
            )
            if not found:
                raise InputError(f"{argument}: no notebooks (.ipynb) in this folder")
            notebooks += found
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise InputError(f"{argument}: not a notebook (expected a .ipynb file)")
            notebooks.append(path)
        else:
            raise InputError(f"{argument}: no such file or folder")
    return _unique(notebooks)


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    unique = []
    for path in paths:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (as version 4), or :class:`InputError` saying why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's validation warnings
            notebook = nbformat.read(path, as_version=4)
        if not isinstance(notebook.get("cells"), list):
            raise ValueError("no list of cells")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{path}: not a readable notebook ({reason[:120]})") from None
    return notebook


def find_checks(notebook) -> dict[str, list[int]]:
    """``{exercise_id: [indices of the code cells that check it]}``, in notebook order.

    A check is a call ``check("<id>", ...)`` or ``<module>.check("<id>", ...)`` on a line
    that is not a comment."""
    checks: dict[str, list[int]] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for exercise_id in _checked_ids(cell.source):
            checks.setdefault(exercise_id, []).append(index)
    return checks


def _checked_ids(source: str) -> list[str]:
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    ids = [match.group(2) for match in _CHECK_CALL.finditer(code)]
    return list(dict.fromkeys(ids))


# --- running a notebook ------------------------------------------------------------------


@dataclass
class _Run:
    """What happened while a notebook ran."""

    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (status, msg)
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # cell -> (name, value)
    stopped: str = ""  # why execution stopped early: timeout, dead kernel...
    stopped_at: int | None = None  # the cell index where it stopped
    final_results: dict | None = None  # companion.exercises.results() at the end


def _execute(notebook, workdir: str, timeout: float) -> _Run:
    """Run every cell of ``notebook`` (in memory) in a fresh kernel whose cwd is
    ``workdir``, reading check outcomes from each cell's outputs as it goes."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # never read the submission's saved outputs
    run = _Run()
    client = NotebookClient(
        notebook, km=_kernel_manager(), timeout=timeout, allow_errors=True,
        shutdown_kernel="immediate", record_timing=False, coalesce_streams=True,
        resources={"metadata": {"path": workdir}},
    )
    try:
        with client.setup_kernel(env=_kernel_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL):
            if _run_cells(client, notebook, run, timeout):
                run.final_results = _read_final_results(client, notebook)
    except Exception as error:  # a kernel that cannot start or a broken connection
        if not run.stopped:
            run.stopped = f"the kernel failed: {type(error).__name__}: {_first_line(error)}"
    return run


def _run_cells(client: NotebookClient, notebook, run: _Run, timeout: float) -> bool:
    """Execute the cells in order; False when execution had to stop early."""
    for index, cell in enumerate(notebook.cells):
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError:
            run.stopped = f"timed out in {_describe_cell(notebook, index)} after {timeout:g} s"
        except DeadKernelError:
            run.stopped = f"the kernel died in {_describe_cell(notebook, index)}"
        _read_cell_outputs(cell, index, run)
        if run.stopped:
            run.stopped_at = index
            return False
    return True


def _kernel_manager() -> AsyncKernelManager:
    """A manager for an IPython kernel of this very interpreter (whatever other ``python3``
    kernelspecs are installed), so that the kernel imports the grader's ``companion``."""
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_ThisPythonSpecs())


class _ThisPythonSpecs(KernelSpecManager):
    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (companion grader)", language="python",
        )


def _kernel_env() -> dict[str, str]:
    """The kernel's environment: the grader's, with this very ``companion`` first on the
    path so that the kernel checks with the same registry as the grader."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    paths = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "MPLBACKEND": "Agg"}


def _read_cell_outputs(cell, index: int, run: _Run) -> None:
    """Record the check outcomes printed or raised in this cell, and its error if any."""
    if cell.cell_type != "code":
        return
    stdout = "".join(
        output.get("text", "") for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )
    for match in _PASSED_LINE.finditer(stdout):
        run.outcomes[match.group(1)] = (PASSED, (match.group(2) or "").strip())
    for match in _NOT_STARTED_LINE.finditer(stdout):
        run.outcomes[match.group(1)] = (NOT_STARTED, match.group(2))
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            _read_error_output(output, index, run)


def _read_error_output(output, index: int, run: _Run) -> None:
    name, value = output.get("ename", "Error"), output.get("evalue", "")
    exercise_id, _, message = value.partition(": ")
    if name == "ExerciseFailed" and message:
        run.outcomes[exercise_id] = (FAILED, message)
    run.errors[index] = (name, _first_line(value))


def _read_final_results(client: NotebookClient, notebook) -> dict | None:
    """``companion.exercises.results()`` from the kernel, via a cell appended to the
    in-memory copy (never saved); None when it cannot be read."""
    notebook.cells.append(nbformat.v4.new_code_cell(_RESULTS_SOURCE))
    try:
        cell = client.execute_cell(notebook.cells[-1], len(notebook.cells) - 1)
    except (CellTimeoutError, DeadKernelError):
        return None
    finally:
        notebook.cells.pop()
    for output in cell.get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith(_RESULTS_MARKER):
                return _parse_results(line[len(_RESULTS_MARKER):])
    return None


def _parse_results(text: str) -> dict | None:
    try:
        results = json.loads(text)
    except ValueError:
        return None
    if not isinstance(results, dict):
        return None
    return {
        exercise_id: (record.get("status", ERROR), _strip_id(exercise_id, record.get("message")))
        for exercise_id, record in results.items() if isinstance(record, dict)
    }


def _strip_id(exercise_id: str, message) -> str:
    message = str(message or "")
    prefix = f"{exercise_id}: "
    return message[len(prefix):] if message.startswith(prefix) else message


# --- from a run to grades ----------------------------------------------------------------


def grade_notebook(path: str | Path, timeout: float = DEFAULT_TIMEOUT) -> Report:
    """Grade one notebook: run a temporary copy and give one :class:`Row` per exercise."""
    path = Path(path)
    notebook = read_notebook(path)
    checks = find_checks(notebook)
    if not checks:
        return Report(str(path), note="no exercise checks found (nothing to grade)")
    with tempfile.TemporaryDirectory(prefix="companion-grade-") as workdir:
        copy = Path(workdir) / path.name
        shutil.copyfile(path, copy)
        run = _execute(read_notebook(copy), workdir, timeout)
    return Report(str(path), _rows(str(path), notebook, checks, run))


def _rows(name: str, notebook, checks: dict[str, list[int]], run: _Run) -> list[Row]:
    outcomes = dict(run.outcomes)
    if run.final_results is not None:
        outcomes.update(run.final_results)  # the kernel's own record wins
    exercise_ids = list(checks) + [i for i in outcomes if i not in checks]
    rows = []
    for exercise_id in exercise_ids:
        status, message = outcomes.get(exercise_id) or (
            ERROR, _why_no_result(notebook, checks.get(exercise_id, []), run)
        )
        rows.append(_row(name, exercise_id, status, message))
    for exercise_id, lesson in _missing_from_lessons(exercise_ids):
        rows.append(_row(name, exercise_id, ERROR,
                         f"no check cell for this exercise: {lesson} checks it, this notebook "
                         "does not (was the cell deleted?)"))
    return rows


def _missing_from_lessons(exercise_ids: list[str]) -> list[tuple[str, str]]:
    """Exercises of the lessons this notebook belongs to (judged by the exercises it does
    check) that it never checks: a deleted check cell must not make an exercise vanish."""
    known = [i for i in exercise_ids if i in exercises.ids()]
    lessons = {exercises.get(i).lesson for i in known} - {""}
    return [
        (exercise_id, exercises.get(exercise_id).lesson)
        for exercise_id in exercises.ids()
        if exercises.get(exercise_id).lesson in lessons and exercise_id not in exercise_ids
    ]


def _row(notebook: str, exercise_id: str, status: str, message: str) -> Row:
    possible = points_possible(exercise_id)
    earned = possible if status == PASSED else 0
    return Row(notebook, exercise_id, status, earned, possible, message)


def points_possible(exercise_id: str) -> int:
    """The points an exercise is worth, as declared in the registry (1 if unknown)."""
    try:
        return int(exercises.get(exercise_id).points)
    except KeyError:
        return 1


def _why_no_result(notebook, check_cells: list[int], run: _Run) -> str:
    """Why a check recorded no result: its cell's error (after the earlier error that
    caused it, if any), or where execution stopped."""
    ran = [index for index in check_cells if run.stopped_at is None or index < run.stopped_at]
    failed = [index for index in ran if index in run.errors]
    if failed:
        index = failed[-1]
        name, value = run.errors[index]
        cause = _earlier_error(notebook, index, run)
        if cause is not None:
            return (f"{run.errors[cause][0]} in {_describe_cell(notebook, cause)}, then "
                    f"{name} in cell {index + 1}: {value}")
        return f"{name} in {_describe_cell(notebook, index)}: {value}"
    if run.stopped:
        return run.stopped if run.stopped_at in check_cells else f"not run: {run.stopped}"
    where = ", ".join(_describe_cell(notebook, index) for index in check_cells)
    return f"its check did not record a result ({where})"


def _earlier_error(notebook, index: int, run: _Run) -> int | None:
    """The latest earlier error in a cell without checks, e.g. the SyntaxError in the def
    cell behind a NameError in the check cell."""
    earlier = [i for i in run.errors if i < index and not _checked_ids(notebook.cells[i].source)]
    return earlier[-1] if earlier else None


def _describe_cell(notebook, index: int) -> str:
    """``cell 4 [def sigmoid(z):]``: 1-based, counting every cell, with its first line."""
    lines = [line.strip() for line in notebook.cells[index].source.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = first if len(first) <= 40 else first[:39] + "…"
    return f"cell {index + 1} [{first}]"


def _first_line(value) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else ""


# --- grading many notebooks --------------------------------------------------------------


def grade_all(notebooks: list[Path], timeout: float = DEFAULT_TIMEOUT, jobs: int = 1,
              progress: bool = True) -> list[Report]:
    """Grade notebooks in ``jobs`` worker processes (a progress bar on stderr); the reports
    come back in the order of ``notebooks``."""
    reports: dict[Path, Report] = {}
    context = multiprocessing.get_context("spawn")
    with (
        concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool,
        tqdm(total=len(notebooks), desc="grading", unit="notebook", file=sys.stderr,
             disable=not progress, dynamic_ncols=True) as bar,
    ):
        futures = {pool.submit(grade_notebook, str(path), timeout): path for path in notebooks}
        for future in concurrent.futures.as_completed(futures):
            path = futures[future]
            reports[path] = _report_or_crash(future, path)
            bar.set_postfix_str(path.name, refresh=False)
            bar.update()
    return [reports[path] for path in notebooks]


def _report_or_crash(future: concurrent.futures.Future, path: Path) -> Report:
    """The worker's report, or every exercise as an error when the worker itself failed."""
    try:
        return future.result()
    except Exception as error:
        reason = f"the grader failed: {type(error).__name__}: {_first_line(error)}"
        checks = find_checks(read_notebook(path))
        return Report(str(path), [_row(str(path), i, ERROR, reason) for i in checks])


def exit_code(reports: list[Report]) -> int:
    """0 when every exercise of every notebook passed (notebooks without exercises do not
    count), 1 otherwise."""
    return 0 if all(row.status == PASSED for report in reports for row in report.rows) else 1


# --- output: table, JSON, CSV -------------------------------------------------------------


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
    if not report.rows:
        return [f"{report.notebook}: {report.note}", ""]
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
    first = _first_line(message)
    return first if len(first) <= width else first[: width - 1].rstrip() + "…"


def _totals(reports: list[Report]) -> str:
    rows = [row for report in reports for row in report.rows]
    passed = sum(row.status == PASSED for row in rows)
    earned = sum(row.points for row in rows)
    possible = sum(row.points_possible for row in rows)
    empty = sum(not report.rows for report in reports)
    without = f" ({empty} without exercises)" if empty else ""
    return (f"Total: {earned}/{possible} points; {passed} of {len(rows)} exercises passed "
            f"in {len(reports)} notebook{'s' if len(reports) != 1 else ''}{without}")


def records(reports: list[Report]) -> list[dict]:
    """One gradebook record per exercise per notebook (see :data:`RECORD_FIELDS`)."""
    return [row.as_record() for report in reports for row in report.rows]


def write_json(reports: list[Report], path: str | Path) -> None:
    """The gradebook as a JSON list of records."""
    with open(path, "w", encoding="utf-8") as file:
        json.dump(records(reports), file, indent=1, ensure_ascii=False)
        file.write("\n")


def write_csv(reports: list[Report], path: str | Path) -> None:
    """The gradebook as CSV, one record per line, with a header."""
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=RECORD_FIELDS)
        writer.writeheader()
        writer.writerows(records(reports))


__all__ = [
    "DEFAULT_TIMEOUT", "ERROR", "FAILED", "NOT_STARTED", "PASSED", "RECORD_FIELDS",
    "InputError", "Report", "Row", "collect_notebooks", "exit_code", "find_checks",
    "format_table", "grade_all", "grade_notebook", "points_possible", "read_notebook",
    "records", "short_message", "write_csv", "write_json",
]
