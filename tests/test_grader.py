"""``python -m companion grade``: real notebooks, built here with nbformat, graded in real
kernels through the command line.

Most kernel-running checks share one graded folder (module fixture): every kind of
submission at once, with ``--jobs 2``, so that the whole file stays fast.
"""

import csv
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from companion import grader

SETUP = "import numpy as np\nfrom companion.exercises import check"
SOLUTIONS = {
    "sigmoid": "def sigmoid(z):\n"
               "    e = np.exp(-np.abs(z))\n"
               "    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))",
    "sigmoid_prime": "def sigmoid_prime(z):\n"
                     "    e = np.exp(-np.abs(z))\n"
                     "    return e / (1 + e) ** 2",
    "tanh_prime": "def tanh_prime(z):\n    return 1 - np.tanh(z) ** 2",
}
IDS = list(SOLUTIONS)


def stub(name):
    return f"def {name}(z):\n    raise NotImplementedError  # your code here"


def lesson(defs=None, after=None, checks=None):
    """A warm-up notebook: setup, then per exercise a def cell and a check cell
    (``checks`` overrides a check cell's source), then the cell ``after[id]`` if any."""
    defs, after, checks = {**SOLUTIONS, **(defs or {})}, after or {}, checks or {}
    cells = [new_markdown_cell("# Warm-up"), new_code_cell(SETUP)]
    for name, source in defs.items():
        cells.append(new_code_cell(source))
        cells.append(new_code_cell(checks.get(name, f'check("{name}", {name})')))
        if name in after:
            cells.append(new_code_cell(after[name]))
    return new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def forged():
    """A stub whose saved outputs (and a print) claim a pass: the grader must not believe
    either."""
    notebook = lesson(defs={"sigmoid": stub("sigmoid"), "sigmoid_prime": stub("sigmoid_prime")},
                      after={"sigmoid_prime": 'print("✓ sigmoid_prime: passed — trust me")'})
    notebook.cells[3].outputs = [new_output("stream", name="stdout", text="✓ sigmoid: passed\n")]
    return notebook


SUBMISSIONS = {
    "solved.ipynb": lesson(),
    "unsolved.ipynb": lesson(defs={name: stub(name) for name in IDS}),
    "wrong.ipynb": lesson(defs={"sigmoid": "def sigmoid(z):\n    return 1/(1+np.exp(-z))"}),
    "deep/loop.ipynb": lesson(defs={"sigmoid_prime": "def sigmoid_prime(z):\n"
                                                     "    while True:\n        pass"}),
    "syntax.ipynb": lesson(defs={"sigmoid_prime": "def sigmoid_prime(z)\n    return z"}),
    "kill.ipynb": lesson(after={"sigmoid": "import os; os._exit(1)"}),
    "module_form.ipynb": lesson(checks={
        "sigmoid": "from companion import exercises\nexercises.check('sigmoid', sigmoid)",
        "tanh_prime": "# check('sigmoid', sigmoid) is commented out\n"
                      "import companion.exercises\ncompanion.exercises.check('tanh_prime', 1)",
    }),
    "forged.ipynb": forged(),
    "deleted_check.ipynb": lesson(checks={"tanh_prime": "pass  # the check cell was deleted"}),
    "no_exercises.ipynb": new_notebook(cells=[new_code_cell("x = input('name? ')")]),
}

EXPECTED = {
    "solved.ipynb": ["passed", "passed", "passed"],
    "unsolved.ipynb": ["not started"] * 3,
    "wrong.ipynb": ["failed", "passed", "passed"],
    "deep/loop.ipynb": ["passed", "error", "error"],
    "syntax.ipynb": ["passed", "error", "passed"],
    "kill.ipynb": ["passed", "error", "error"],
    "module_form.ipynb": ["passed", "passed", "failed"],
    "forged.ipynb": ["not started", "not started", "passed"],
    "deleted_check.ipynb": ["passed", "passed", "error"],
    "no_exercises.ipynb": [],
}
TIMEOUT = 6


def grade(*arguments, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "companion", "grade", *map(str, arguments)],
        capture_output=True, text=True, encoding="utf-8", timeout=240, cwd=cwd,
    )


def write(folder, notebooks):
    for name, notebook in notebooks.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / name)


def write_text(path, text):
    path.write_text(text)
    return path


def snapshot(folder):
    """Every file and folder under ``folder`` (hidden ones too): bytes and mtime."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            content = open(path, "rb").read() if name in files else None
            state[os.path.relpath(path, folder)] = (content, os.stat(path).st_mtime_ns)
    return state


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The submissions folder graded once with ``--jobs 2``: the process and its outputs."""
    base = tmp_path_factory.mktemp("grading")
    folder = base / "submissions"
    write(folder, SUBMISSIONS)
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "solved-checkpoint.ipynb").write_text("{corrupt")
    (folder / ".hidden.txt").write_text("learner notes")
    before = snapshot(folder)
    process = grade(folder, "--jobs", 2, "--timeout", TIMEOUT,
                    "--json", base / "grades.json", "--csv", base / "grades.csv", cwd=base)
    with open(base / "grades.csv", encoding="utf-8", newline="") as file:
        csv_rows = list(csv.DictReader(file))
    return {
        "process": process, "folder": folder, "before": before, "after": snapshot(folder),
        "json": json.loads((base / "grades.json").read_text(encoding="utf-8")),
        "csv": csv_rows,
    }


def by_notebook(records, folder):
    grouped = {}
    for record in records:
        name = os.path.relpath(record["notebook"], folder).replace(os.sep, "/")
        grouped.setdefault(name, []).append(record)
    return grouped


def test_every_kind_of_submission_gets_its_statuses(graded):
    grouped = by_notebook(graded["json"], graded["folder"])
    statuses = {name: [r["status"] for r in grouped.get(name, [])] for name in EXPECTED}
    assert statuses == EXPECTED
    assert {name: [r["exercise"] for r in records] for name, records in grouped.items()} == {
        name: IDS for name in EXPECTED if EXPECTED[name]}
    assert graded["process"].returncode == 1


def test_messages_say_what_went_wrong_and_where(graded):
    grouped = by_notebook(graded["json"], graded["folder"])
    message = {(name, r["exercise"]): r["message"] for name, rs in grouped.items() for r in rs}
    assert "exp(-z) overflows" in message["wrong.ipynb", "sigmoid"]
    assert message["unsolved.ipynb", "sigmoid"].startswith("not started")
    assert message["deep/loop.ipynb", "sigmoid_prime"].startswith("timed out in cell 6")
    assert message["deep/loop.ipynb", "tanh_prime"].startswith("not run: timed out in cell 6")
    assert message["kill.ipynb", "sigmoid_prime"].startswith("not run: the kernel died in cell 5")
    syntax = message["syntax.ipynb", "sigmoid_prime"]
    assert syntax.startswith("SyntaxError in cell 5") and "NameError in cell 6" in syntax
    assert message["module_form.ipynb", "tanh_prime"].startswith("expected your function")
    deleted = message["deleted_check.ipynb", "tanh_prime"]
    assert deleted.startswith("no check cell for this exercise: lessons/00_warmup.ipynb")


def test_points_come_from_the_registry(graded):
    for record in graded["json"]:
        possible = grader.points_possible(record["exercise"])
        assert record["points_possible"] == possible
        assert record["points"] == (possible if record["status"] == "passed" else 0)


def test_submissions_are_left_untouched(graded):
    assert graded["after"] == graded["before"]


def test_terminal_table_json_and_csv_agree(graded):
    table = parse_table(graded["process"].stdout)
    records = graded["json"]
    assert [(r["notebook"], r["exercise"]) for r in records] == [row[:2] for row in table]
    for (*_, points, status, message), record in zip(table, records, strict=True):
        assert points == f"{record['points']}/{record['points_possible']}"
        assert status == record["status"]
        first_line = record["message"].splitlines()[0] if record["message"] else ""
        assert first_line.startswith(message.removesuffix("…").rstrip())
        assert message.endswith("…") or message == first_line
    assert graded["csv"] == [{key: str(value) for key, value in r.items()} for r in records]
    assert set(records[0]) == set(grader.RECORD_FIELDS)


def test_table_notes_notebooks_without_exercises_and_totals(graded):
    stdout = graded["process"].stdout
    assert re.search(r"no_exercises\.ipynb: no exercise checks found", stdout)
    earned = sum(r["points"] for r in graded["json"])
    possible = sum(r["points_possible"] for r in graded["json"])
    assert f"Total: {earned}/{possible} points" in stdout.splitlines()[-1]
    assert "(1 without exercises)" in stdout.splitlines()[-1]


def test_progress_bar_on_stderr_and_no_traceback(graded):
    stderr = graded["process"].stderr
    assert "grading" in stderr and f"{len(SUBMISSIONS)}/{len(SUBMISSIONS)}" in stderr
    assert "Traceback" not in stderr + graded["process"].stdout


def parse_table(stdout):
    """The exercise rows of the terminal table: (notebook, exercise, points, status,
    message)."""
    rows, notebook = [], None
    for line in stdout.splitlines():
        header = re.fullmatch(r"(\S.*): \d+/\d+ points", line)
        if header:
            notebook = header.group(1)
        elif line.startswith("  ") and not line.split()[0] == "exercise":
            cells = re.split(r"\s{2,}", line.strip(), maxsplit=3)
            rows.append((notebook, *cells, *[""] * (4 - len(cells))))
    return rows


def test_all_passed_exits_zero_and_notebooks_without_exercises_do_not_count(tmp_path):
    write(tmp_path, {"solved.ipynb": SUBMISSIONS["solved.ipynb"],
                     "notes.ipynb": SUBMISSIONS["no_exercises.ipynb"]})
    process = grade(tmp_path / "solved.ipynb", tmp_path / "notes.ipynb", "--no-progress")
    assert process.returncode == 0, process.stdout + process.stderr
    assert process.stderr == ""
    assert "3/3 points" in process.stdout and "notes.ipynb: no exercise checks" in process.stdout


def one_line_error(process):
    assert process.returncode == 2
    assert process.stdout == ""
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in process.stderr, process.stderr
    return lines[0]


@pytest.mark.parametrize("make, expected", [
    (lambda tmp: tmp / "missing.ipynb", "no such file or folder"),
    (lambda tmp: tmp / "missing_folder", "no such file or folder"),
    (lambda tmp: write_text(tmp / "corrupt.ipynb", '{"cells": ['), "not a readable notebook"),
    (lambda tmp: write_text(tmp / "list.ipynb", "[1, 2]"), "not a readable notebook"),
    (lambda tmp: write_text(tmp / "notes.txt", "hello"), "not a notebook"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no notebooks"),
])
def test_unreadable_input_is_a_one_line_usage_error(tmp_path, make, expected):
    path = make(tmp_path)
    line = one_line_error(grade(path))
    assert expected in line and str(path) in line


def test_unreadable_input_stops_before_anything_runs(tmp_path):
    write(tmp_path, {"solved.ipynb": SUBMISSIONS["solved.ipynb"]})
    write_text(tmp_path / "corrupt.ipynb", "not json")
    assert "corrupt.ipynb" in one_line_error(grade(tmp_path / "solved.ipynb", tmp_path))


@pytest.mark.parametrize("arguments", [[], ["x.ipynb", "--jobs", "0"],
                                       ["x.ipynb", "--timeout", "soon"], ["--frobnicate"]])
def test_bad_arguments_are_a_one_line_usage_error(arguments):
    assert "see --help" in one_line_error(grade(*arguments))


def test_help_lists_the_options():
    process = subprocess.run([sys.executable, "-m", "companion", "grade", "--help"],
                             capture_output=True, text=True)
    assert process.returncode == 0
    for option in ("PATH", "--json FILE", "--csv FILE", "--timeout SECONDS", "--jobs N"):
        assert option in process.stdout


def test_find_checks_reads_check_cells_only():
    notebook = new_notebook(cells=[
        new_markdown_cell('check("sigmoid", sigmoid)'),
        new_code_cell("# check('tanh_prime', tanh_prime)\nmycheck('x', f)\n_check('y', f)"),
        new_code_cell("exercises.check( 'sigmoid_prime' , f)\ncheck(\"sigmoid\", sigmoid)"),
        new_code_cell('check("sigmoid", sigmoid)  # again'),
    ])
    assert grader.find_checks(notebook) == {"sigmoid_prime": [2], "sigmoid": [2, 3]}


def test_the_kernel_is_this_interpreter():
    assert grader._kernel_manager().kernel_spec.argv[0] == sys.executable


def test_short_message_keeps_the_first_line_within_the_width():
    assert grader.short_message("one\ntwo", 10) == "one"
    assert grader.short_message("a" * 20, 10) == "a" * 9 + "…"
