"""Grade many notebooks: each in its own worker process and temporary folder, the
gradebook written as results arrive, nothing left behind.

Every notebook runs in a fresh process (:mod:`companion.grading.worker`) started in a new
session, with its own temporary folder (the kernel's working folder), under a wall-clock
limit. Whatever a submission does to its kernel or its worker, the grader only sees that
worker's signed report, if the worker exited normally and signed exactly one, or its absence
(then that notebook's rows are ``error``). The worker, a child subreaper itself, kills what
its kernel left before it reports; after each notebook, every process started for it (found
by a token in its environment) is killed and its folder removed; at the end, any descendant
left is killed, round after round (the grader is a child subreaper too, so orphans come back
to it), and the run's folder removed.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from companion.grading import processes, worker
from companion.grading.notebooks import Submission

PASSED, FAILED, NOT_STARTED, ERROR = "passed", "failed", "not started", "error"
DEFAULT_TIMEOUT = 120.0
NOTEBOOK_TIMEOUT_FACTOR = 10
TOKEN_VARIABLE = "COMPANION_GRADE_TOKEN"
MAX_REPORT_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Row:
    """The grade of one exercise in one notebook; ``points`` are the points earned."""

    notebook: str
    exercise: str
    status: str
    points: int
    points_possible: int
    message: str
    seconds: float = 0.0

    def as_record(self) -> dict:
        from companion.grading.output import RECORD_FIELDS

        return {name: getattr(self, name) for name in RECORD_FIELDS}


@dataclass
class Report:
    """The grades of one notebook; ``input_error`` when it could not be graded at all."""

    notebook: str
    rows: list[Row] = field(default_factory=list)
    input_error: bool = False


@dataclass
class Options:
    timeout: float = DEFAULT_TIMEOUT
    notebook_timeout: float | None = None
    memory: int | None = None
    sandbox: bool = False
    jobs: int = 1
    lesson: str | None = None
    exercise: str | None = None
    output_cap: int = 2 * 2**20

    @property
    def notebook_limit(self) -> float:
        return self.notebook_timeout or NOTEBOOK_TIMEOUT_FACTOR * self.timeout


# --- lessons -------------------------------------------------------------------------------


def lesson_id(exercise) -> str:
    """The lesson id of a registered exercise: its lesson notebook's name without the
    extension (``lessons/00_warmup.ipynb`` -> ``00_warmup``)."""
    return Path(exercise.lesson).stem


def lesson_exercises(lesson: str) -> list[str]:
    """The ids of a lesson's exercises, in lesson order."""
    from companion import exercises

    return [eid for eid in exercises.ids() if lesson_id(exercises.get(eid)) == lesson]


def lesson_ids() -> list[str]:
    from companion import exercises

    return list(dict.fromkeys(lesson_id(exercises.get(eid)) for eid in exercises.ids()))


def points_possible(exercise_id: str) -> int:
    """The points an exercise is worth, as declared in the registry (1 if unknown)."""
    from companion import exercises

    try:
        return int(exercises.get(exercise_id).points)
    except KeyError:
        return 1


def row(notebook: str, exercise_id: str, status: str, message: str,
        seconds: float = 0.0) -> Row:
    possible = points_possible(exercise_id)
    return Row(notebook, exercise_id, status, possible if status == PASSED else 0, possible,
               encodable(message), seconds)


def encodable(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (a lone surrogate from a learner's error
    message) written as a backslash escape, so that every gradebook can be written."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _input_error(name: str, message: str) -> Report:
    return Report(name, [Row(name, "", ERROR, 0, 0, message)], input_error=True)


def exercises_to_grade(submission: Submission, options: Options) -> list[str] | Report:
    """The exercises a readable notebook is graded on, or the error report saying why
    none."""
    known = lesson_ids()
    if submission.lesson is None:
        return _input_error(submission.name, "no lesson id in the notebook's metadata "
                            "(metadata.companion.lesson): is this a course lesson? Start "
                            "from the lesson notebook in lessons/")
    if submission.lesson not in known:
        return _input_error(submission.name, f"unknown lesson id {submission.lesson!r} in "
                            f"its metadata; known lessons: {', '.join(known)}")
    if options.lesson and submission.lesson != options.lesson:
        return _input_error(submission.name, f"this notebook is lesson {submission.lesson!r}, "
                            f"not {options.lesson!r}")
    ids = lesson_exercises(submission.lesson)
    if options.exercise:
        if options.exercise not in ids:
            return _input_error(submission.name, f"exercise {options.exercise!r} is not in "
                                f"lesson {submission.lesson!r} (its exercises: "
                                f"{', '.join(ids)})")
        ids = [options.exercise]
    return ids


# --- one notebook, in its own process ------------------------------------------------------


def grade_submission(submission: Submission, options: Options, run_dir: str,
                     seed: int) -> Report:
    """Grade one submission in a worker process (see :mod:`companion.grading.worker`)."""
    if submission.problem:
        return _input_error(submission.name, submission.problem)
    ids = exercises_to_grade(submission, options)
    if isinstance(ids, Report):
        return ids
    workdir = tempfile.mkdtemp(prefix="nb-", dir=run_dir)
    control = tempfile.mkdtemp(prefix="ctl-", dir=run_dir)
    token = f"{os.path.basename(run_dir)}-{secrets.token_hex(8)}"
    key = secrets.token_hex(32)
    request = worker.Request(
        cells=submission.cells, exercises=ids, seed=seed, timeout=options.timeout,
        notebook_timeout=options.notebook_limit, workdir=workdir, key=key,
        memory=options.memory, sandbox=options.sandbox, output_cap=options.output_cap)
    try:
        result, problem = _run_worker(request, control, token)
    finally:
        kill_tagged(token)
        remove_tree(workdir)
        remove_tree(control)
    if result is None:
        return Report(submission.name, [row(submission.name, eid, ERROR, problem)
                                        for eid in ids])
    rows = [row(submission.name, r["exercise"], r["status"], r["message"], r["seconds"])
            for r in result["rows"]]
    return Report(submission.name, rows)


def _run_worker(request: worker.Request, control: str, token: str) -> tuple[dict | None, str]:
    env = {**os.environ, TOKEN_VARIABLE: token,
           "JUPYTER_RUNTIME_DIR": os.path.join(request.workdir, "runtime"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("COMPANION_STRICT_CHECKS", None)
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    out_path = os.path.join(control, "report")
    limit = request.notebook_timeout + 60 + 2 * request.timeout
    with open(out_path, "wb") as out, open(os.path.join(control, "log"), "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "companion.grading.worker"], stdin=subprocess.PIPE,
            stdout=out, stderr=log, cwd=request.workdir, env=env, start_new_session=True)
        try:
            process.communicate(json.dumps(request.__dict__).encode(), timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
            return None, f"the grader's worker ran past {limit:g} s and was stopped"
        except BrokenPipeError:
            process.wait()
    _kill_group(process.pid)
    return _read_report(out_path, request.key, process.returncode)


def _read_report(path: str, key: str, returncode: int) -> tuple[dict | None, str]:
    """The worker's report: the one line signed with the key, from a worker that exited
    normally. A worker that was killed cannot have finished its report, and two signed
    lines mean one of them is forged: either way the notebook gets no verdict."""
    if returncode != 0:
        return None, (f"the grader's worker for this notebook died (exit code {returncode}); "
                      "was it killed from inside the notebook?")
    with open(path, "rb") as file:
        raw = file.read(MAX_REPORT_BYTES + 1)
    signed = []
    for line in raw.decode("utf-8", "replace").splitlines():
        parts = line.split(" ", 2)
        if (len(parts) == 3 and parts[0] == worker.REPORT_PREFIX
                and secrets.compare_digest(parts[1], worker.sign(key, parts[2]))):
            signed.append(parts[2])  # lines not signed with the key are ignored
    if len(signed) != 1:
        return None, (f"the grader's worker wrote {len(signed)} signed reports instead of one "
                      "(did the notebook tamper with it?)")
    return json.loads(signed[0]), ""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tagged(token: str) -> None:
    """Kill every process whose environment carries ``token`` (a kernel and whatever it
    started), with its process group."""
    for process in psutil.process_iter():
        try:
            if process.pid == os.getpid() or process.environ().get(TOKEN_VARIABLE) != token:
                continue
            process.kill()
        except (psutil.Error, OSError):
            continue


def kill_descendants(run_prefix: str | None) -> None:
    """Kill this process's descendants started by this run (their environment holds a
    token of the run), or all of them when ``run_prefix`` is None (the command line, which
    starts no other process)."""
    if run_prefix is None:
        processes.kill_descendants()  # round after round: a process may fork as it dies
        return
    for process in psutil.Process().children(recursive=True):
        try:
            token = process.environ().get(TOKEN_VARIABLE, "")
            if token.startswith(run_prefix):
                process.kill()
        except (psutil.Error, OSError):
            continue
    processes.reap()


def remove_tree(path: str) -> None:
    """Remove a folder whatever permissions the kernel gave its contents."""
    def make_writable(function, target, _):
        try:
            os.chmod(os.path.dirname(target), stat.S_IRWXU)
            os.chmod(target, stat.S_IRWXU)
            function(target)
        except OSError:
            pass

    for _ in range(3):
        if not os.path.lexists(path):
            return
        shutil.rmtree(path, onerror=make_writable)


# --- many notebooks ------------------------------------------------------------------------


def grade_all(submissions: list[Submission], options: Options, on_report=None,
              progress: bool = False, own_process: bool = False) -> list[Report]:
    """Grade every submission, ``options.jobs`` at a time; ``on_report(reports so far)`` is
    called as each one finishes. Returns the reports in input order. With ``own_process``
    (the command line), every descendant left at the end is killed, whatever its
    environment."""
    from tqdm import tqdm

    processes.become_subreaper()
    run_dir = tempfile.mkdtemp(prefix="companion-grade-")
    prefix = os.path.basename(run_dir)
    reports: dict[int, Report] = {}
    try:
        with (
            concurrent.futures.ThreadPoolExecutor(max_workers=options.jobs) as pool,
            tqdm(total=len(submissions), desc="grading", unit="notebook", file=sys.stderr,
                 disable=not progress, dynamic_ncols=True) as bar,
        ):
            # each notebook its own random cases: none can copy another's results
            futures = {pool.submit(_grade_safely, s, options, run_dir, secrets.randbits(63)): i
                       for i, s in enumerate(submissions)}
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                reports[index] = future.result()
                bar.set_postfix_str(submissions[index].name[-40:], refresh=False)
                bar.update()
                if on_report is not None:
                    try:
                        on_report([reports[i] for i in sorted(reports)])
                    except Exception as error:  # noqa: BLE001 - keep grading the others
                        print(f"warning: the gradebook could not be written yet: "
                              f"{type(error).__name__}: {error}", file=sys.stderr)
    finally:
        kill_descendants(None if own_process else prefix)
        remove_tree(run_dir)
    return [reports[index] for index in range(len(submissions))]


def _grade_safely(submission, options, run_dir, seed) -> Report:
    started = time.monotonic()
    try:
        return grade_submission(submission, options, run_dir, seed)
    except Exception as error:  # noqa: BLE001 - one notebook must not stop the run
        message = f"the grader failed on this notebook: {type(error).__name__}: {error}"
        report = _input_error(submission.name, message.splitlines()[0])
        report.rows = [Row(submission.name, "", ERROR, 0, 0, report.rows[0].message,
                           time.monotonic() - started)]
        return report


def exit_code(reports: list[Report], exercise: str | None = None) -> int:
    """2 when some input could not be graded; else 0 when every exercise passed, 1
    otherwise. (With ``exercise``: 0 only if that exercise passed everywhere.)"""
    if any(report.input_error for report in reports):
        return 2
    rows = [r for report in reports for r in report.rows]
    if exercise is not None and not rows:
        return 1
    return 0 if all(r.status == PASSED for r in rows) else 1
