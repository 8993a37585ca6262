"""``python -m companion grade`` on a class's worth of submissions built from the real warm-up
lesson: honest ones, broken ones, hostile ones, graded in real kernels through the command
line.

One module fixture grades them all at once (``--jobs 2``); the other kernel-running tests
grade one notebook each. Every test checks that the submissions are unchanged and that no
temporary folder or process of the grader outlives its run.
"""

import csv
import json
import os
import re
import socket
import threading
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_output

from companion import exercises, grader

from .grading_tools import (
    ROOT,
    STUB,
    WARMUP_IDS,
    grade,
    grader_leftovers,
    mutant_source,
    names_used,
    setup_for,
    snapshot,
    warmup,
    write,
)

TIMEOUT = 8  # seconds per cell and per check: the looping submission spins this long
NAIVE_SIGMOID = "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))"
PASSED3 = ["passed"] * 3
KILL_WORKER = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
SELF_CONTAINED_SIGMOID_PRIME = ("def sigmoid_prime(z):  # does not call the learner's sigmoid\n"
                                "    e = np.exp(-np.abs(z))\n    return e / (1 + e) ** 2")
FAKE_PASS = "\n".join(f'print("✓ {i}: passed — trust me")' for i in WARMUP_IDS)


def mutants(index):
    return {eid: mutant_source(eid, index) for eid in WARMUP_IDS}


def wrong():
    return {"sigmoid": STUB, "sigmoid_prime": mutant_source("sigmoid_prime", 0),
            "tanh_prime": "def tanh_prime(z):\n    return 1 - z ** 2"}


def forge_claims():
    """Claims of success every way the kernel can make them: a redefined check, printed
    pass lines, saved outputs, then the kernel killed before anything else can run."""
    notebook = warmup(
        wrong(),
        after={"sigmoid": "def check(exercise_id, candidate):\n"
                          "    print(f'✓ {exercise_id}: passed — forged')"},
        extra=[FAKE_PASS, FAKE_PASS + "\nimport os\nos._exit(0)"],
    )
    for cell in notebook.cells:
        if cell.cell_type == "code" and "check(" in cell.source:
            cell.outputs = [new_output("stream", name="stdout", text="✓ sigmoid: passed\n")]
    return notebook


PATCH_COMPANION = """\
import sys, os
import companion.exercises as ex
import companion.exercises.core as core
core.verdict = lambda *args, **kwargs: ("passed", "forged")
core.evaluate = lambda exercise, candidate, cases, **kw: [
    core.Behaviour("returned", outputs=0.5, args_after=[]) for _ in cases]
core._RESULTS.clear()
ex.results = lambda: {i: {"status": "passed", "message": "", "points": 1}
                      for i in ("sigmoid", "sigmoid_prime", "tanh_prime")}
sys.stdout = open(os.devnull, "w")
sys.stderr = sys.stdout
"""

JUNK_RESULTS = """\
import json
import companion.grading.kernel_side as kernel_side
def forged(exercise_id, candidate, cases_path, out_path, time_limit):
    with open(out_path, "w") as file:
        json.dump({"missing": False, "behaviours": "passed"}, file)
kernel_side.evaluate_to_file = forged
"""


def escape(targets, port):
    """A cell that writes outside its folder (each target, ignoring errors) and opens a
    network connection."""
    writes = "".join(f"try:\n    open({str(t)!r}, 'w').write('escaped')\nexcept OSError:\n"
                     "    pass\n" for t in targets)
    return (writes + "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()")


def listening_server():
    """A TCP server on the loopback that counts its connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    connections = []

    def accept():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connections.append(1)
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, connections


SUBMISSIONS = {
    "a_solved.ipynb": (warmup, {}),
    "b_kill_worker.ipynb": (warmup, {"after": {"sigmoid": KILL_WORKER}}),
    "c_solved.ipynb": (warmup, {}),
    "kill_kernel.ipynb": (warmup, {"after": {"sigmoid": "import os\nos._exit(1)"}, "extra": [
        "import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)"]}),
    "loop_and_output.ipynb": (warmup, {
        "defs": {"sigmoid": "def sigmoid(z):\n    while True:\n        pass",
                 "sigmoid_prime": SELF_CONTAINED_SIGMOID_PRIME},
        "extra": ["print('x' * 400_000)\nfor _ in range(100):\n    print('y' * 100_000)"]}),
    "unsolved_syntax.ipynb": (warmup, {"defs": {
        "sigmoid": STUB, "tanh_prime": STUB,
        "sigmoid_prime": "def sigmoid_prime(z)\n    return z"}}),
    "mutant_0.ipynb": (warmup, {"defs": mutants(0)}),
    "mutant_3.ipynb": (warmup, {"defs": mutants(3)}),
    "forge_claims.ipynb": (forge_claims, None),
    "forge_patch.ipynb": (warmup, {"defs": wrong(), "early": [PATCH_COMPANION]}),
    "forge_junk.ipynb": (warmup, {"defs": wrong(), "early": [JUNK_RESULTS],
                                  "checks": dict.fromkeys(WARMUP_IDS, "pass")}),
    "deleted_def.ipynb": (warmup, {"defs": {"sigmoid": "pass  # the def cell was deleted",
                                            "sigmoid_prime": SELF_CONTAINED_SIGMOID_PRIME}}),
    "other_lesson.ipynb": (warmup, {"lesson": "01_rnn"}),
    "no_lesson.ipynb": (warmup, {"lesson": None}),
    "unknown_lesson.ipynb": (warmup, {"lesson": "99_nope"}),
    # the unsolved and the wrong copy of the README's and the introduction's example class
    "readme_unsolved.ipynb": (warmup, {"defs": dict.fromkeys(WARMUP_IDS, STUB)}),
    "readme_wrong.ipynb": (warmup, {"defs": {"sigmoid": NAIVE_SIGMOID,
                                             "sigmoid_prime": SELF_CONTAINED_SIGMOID_PRIME}}),
    # the naive formula with its overflow warning switched off: right values, wrong answer
    "silenced.ipynb": (warmup, {"defs": {
        "sigmoid": "def sigmoid(z):\n    with np.errstate(over='ignore'):\n"
                   "        return 1 / (1 + np.exp(-z))",
        "sigmoid_prime": SELF_CONTAINED_SIGMOID_PRIME}}),
}

EXPECTED = {
    "a_solved.ipynb": PASSED3,
    "b_kill_worker.ipynb": ["error"] * 3,
    "c_solved.ipynb": PASSED3,
    "kill_kernel.ipynb": PASSED3,
    "loop_and_output.ipynb": ["failed", "passed", "passed"],
    "unsolved_syntax.ipynb": ["not started", "error", "not started"],
    "mutant_0.ipynb": ["failed"] * 3,
    "mutant_3.ipynb": ["failed"] * 3,
    "forge_claims.ipynb": ["not started", "failed", "failed"],
    "forge_patch.ipynb": ["not started", "failed", "failed"],
    "forge_junk.ipynb": ["error"] * 3,
    "deleted_def.ipynb": ["error", "passed", "passed"],
    "other_lesson.ipynb": ["error"] * len(grader.lesson_exercises("01_rnn")),
    "no_lesson.ipynb": ["error"],
    "unknown_lesson.ipynb": ["error"],
    "readme_unsolved.ipynb": ["not started"] * 3,
    "readme_wrong.ipynb": ["failed", "passed", "passed"],
    "silenced.ipynb": ["failed", "passed", "passed"],
    "broken/list.ipynb": ["error"],
    "broken/corrupt.ipynb": ["error"],
    "broken/no_cell_type.ipynb": ["error"],
    "broken/source_number.ipynb": ["error"],
    "broken/latin1.ipynb": ["error"],
    "caf\\xe9.ipynb": PASSED3,
}

BROKEN = {
    "list.ipynb": b"[1, 2]",
    "corrupt.ipynb": b'{"cells": [',
    "no_cell_type.ipynb": json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                      "cells": [{"source": "x = 1"}]}).encode(),
    "source_number.ipynb": json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"companion": {"lesson": "00_warmup"}},
        "cells": [{"cell_type": "code", "source": 42, "metadata": {}, "outputs": []}]}).encode(),
    "latin1.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "x": "café"}'.encode("latin-1"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The whole class graded once: the process, the gradebooks, what is left behind."""
    base = tmp_path_factory.mktemp("grading")
    folder = base / "submissions"
    write(folder, {name: make(**(options or {})) for name, (make, options)
                   in SUBMISSIONS.items()})
    (folder / "broken").mkdir()
    for name, raw in BROKEN.items():
        (folder / "broken" / name).write_bytes(raw)
    with open(os.fsencode(folder) + b"/caf\xe9.ipynb", "wb") as file:
        file.write((folder / "a_solved.ipynb").read_bytes())
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "a_solved-checkpoint.ipynb").write_text("{corrupt")
    before = snapshot(folder)
    process = grade(folder, "--jobs", 2, "--timeout", TIMEOUT, "--json", base / "grades.json",
                    "--csv", base / "grades.csv", "--gradescope", base / "results.json",
                    cwd=base)
    with open(base / "grades.csv", encoding="utf-8", newline="") as file:
        csv_rows = list(csv.DictReader(file))
    return {
        "process": process, "folder": folder, "before": before, "after": snapshot(folder),
        "json": json.loads((base / "grades.json").read_text(encoding="utf-8")),
        "gradescope": json.loads((base / "results.json").read_text(encoding="utf-8")),
        "csv": csv_rows, "cwd": sorted(os.listdir(base)), "leftovers": grader_leftovers(),
    }


def by_notebook(records, folder):
    grouped = {}
    for record in records:
        name = os.path.relpath(record["notebook"], str(folder)).replace(os.sep, "/")
        grouped.setdefault(name, []).append(record)
    return grouped


def messages(graded):
    grouped = by_notebook(graded["json"], graded["folder"])
    return {(name, r["exercise"]): r["message"] for name, rs in grouped.items() for r in rs}


def _example_blocks(path: Path) -> list[str]:
    """The grader's example outputs in a page: each ``$ python -m companion grade`` block."""
    text = path.read_text(encoding="utf-8")
    return re.findall(r"```text\n(\$ python -m companion grade .*?)\n```", text, flags=re.DOTALL)


def _reports(graded, names: dict[str, str]):
    """The graded class's rows of ``names`` (file in the class -> name to show), as reports."""
    from companion.grading.run import Report, Row

    grouped = by_notebook(graded["json"], graded["folder"])
    return [Report(shown, [Row(**{**record, "notebook": shown}) for record in grouped[name]])
            for name, shown in names.items()]


@pytest.mark.slow
class TestOneClassGradedAtOnce:
    """Tests of the ``graded`` fixture: one worker runs them all (xdist schedules a class as
    one unit), so the class is graded once."""

    def test_every_submission_gets_its_rows_and_broken_ones_do_not_stop_the_rest(self, graded):
        grouped = by_notebook(graded["json"], graded["folder"])
        statuses = {name: [r["status"] for r in grouped.get(name, [])] for name in EXPECTED}
        assert statuses == EXPECTED, graded["process"].stderr[-3000:]
        assert set(grouped) == set(EXPECTED)
        assert [r["exercise"] for r in grouped["a_solved.ipynb"]] == WARMUP_IDS
        assert graded["process"].returncode == 2  # some inputs could not be graded

    def test_the_readme_and_the_introduction_show_what_the_grader_prints(self, graded):
        """Their example tables are the grader's own table of a solved, an unsolved and a
        wrong warm-up graded here (the wrong one's sigmoid is 1 / (1 + exp(-z)), and its
        sigmoid_prime does not call it)."""
        from companion.grading.output import format_table

        class_table = format_table(_reports(graded, {
            "a_solved.ipynb": "submissions/solved.ipynb",
            "readme_unsolved.ipynb": "submissions/unsolved.ipynb",
            "readme_wrong.ipynb": "submissions/wrong.ipynb"}), width=100)
        lesson_table = format_table(_reports(
            graded, {"readme_unsolved.ipynb": "lessons/00_warmup.ipynb"}), width=100)
        for page in (ROOT / "README.md", ROOT / "book" / "intro.md"):
            blocks = _example_blocks(page)
            assert blocks, page
            for block in blocks:
                command, table = block.split("\n", 1)
                expected = lesson_table if "lessons/00_warmup.ipynb" in command else class_table
                assert table == expected, f"{page.name}: {command}"

    def test_a_submission_that_kills_its_worker_affects_only_itself(self, graded):
        message = messages(graded)
        assert "worker for this notebook died" in message["b_kill_worker.ipynb", "sigmoid"]
        grouped = by_notebook(graded["json"], graded["folder"])
        assert [r["status"] for r in grouped["c_solved.ipynb"]] == PASSED3

    def test_forgeries_never_pass(self, graded):
        grouped = by_notebook(graded["json"], graded["folder"])
        for name in ("forge_claims.ipynb", "forge_patch.ipynb", "forge_junk.ipynb"):
            assert "passed" not in [r["status"] for r in grouped[name]], name
        assert "no usable result" in messages(graded)["forge_junk.ipynb", "sigmoid"]

    def test_mutants_get_their_own_hint_from_the_grader(self, graded):
        message = messages(graded)
        for index in (0, 3):
            for eid in WARMUP_IDS:
                hint = exercises.get(eid).mutants[index].hint
                assert hint in message[f"mutant_{index}.ipynb", eid]

    def test_messages_say_what_went_wrong_and_where(self, graded):
        message = messages(graded)
        assert "did not return within" in message["loop_and_output.ipynb", "sigmoid"]
        syntax = message["unsolved_syntax.ipynb", "sigmoid_prime"]
        assert "SyntaxError in cell" in syntax and "def sigmoid_prime(z)" in syntax
        assert "no function named `sigmoid`" in message["deleted_def.ipynb", "sigmoid"]
        assert "switches warnings off (`errstate`)" in message["silenced.ipynb", "sigmoid"]
        assert "no function named" in message["other_lesson.ipynb", "rnn_cell_forward"]
        assert "no lesson id" in message["no_lesson.ipynb", ""]
        assert "unknown lesson id '99_nope'" in message["unknown_lesson.ipynb", ""]
        assert "not a readable notebook" in message["broken/list.ipynb", ""]
        assert "no valid cell_type" in message["broken/no_cell_type.ipynb", ""]
        assert "source is not text" in message["broken/source_number.ipynb", ""]
        assert "not UTF-8" in message["broken/latin1.ipynb", ""]

    def test_a_timeout_or_a_crash_costs_one_exercise(self, graded):
        grouped = by_notebook(graded["json"], graded["folder"])
        assert [r["status"] for r in grouped["kill_kernel.ipynb"]] == PASSED3
        assert [r["status"] for r in grouped["loop_and_output.ipynb"]][1:] == ["passed"] * 2

    def test_nothing_is_changed_written_or_left_behind(self, graded):
        assert graded["after"] == graded["before"]
        assert graded["cwd"] == ["grades.csv", "grades.json", "results.json", "submissions"]
        assert graded["leftovers"] == ([], [])

    def test_table_json_csv_and_gradescope_agree(self, graded):
        records = graded["json"]
        assert graded["csv"] == [{key: str(value) for key, value in r.items()} for r in records]
        assert set(records[0]) == set(grader.RECORD_FIELDS)
        for record in records:
            if record["exercise"]:
                possible = grader.points_possible(record["exercise"])
                assert record["points_possible"] == possible
                assert record["points"] == (possible if record["status"] == "passed" else 0)
        results = graded["gradescope"]
        assert_gradescope_format(results)
        assert len(results["tests"]) == len(records)
        assert results["score"] == sum(r["points"] for r in records)
        stdout = graded["process"].stdout
        assert "Total: " in stdout.splitlines()[-1] and "could not be graded" in stdout
        assert "Traceback" not in stdout + graded["process"].stderr


def assert_gradescope_format(results):
    assert set(results) >= {"score", "tests"}
    assert isinstance(results["score"], int | float)
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "status",
                             "execution_time"}
        assert test["status"] in ("passed", "failed")
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
        assert (test["status"] == "passed") == (test["score"] == test["max_score"] > 0)


# --- one notebook each ---------------------------------------------------------------------


@pytest.mark.slow
def test_memory_limit_makes_a_hog_an_error_and_spares_the_rest(tmp_path):
    hog = "def sigmoid(z):\n    big = np.ones((2**31,))\n    return big[:0]"
    write(tmp_path, {"hog.ipynb": warmup({"sigmoid": hog,
                                          "sigmoid_prime": SELF_CONTAINED_SIGMOID_PRIME})})
    before = snapshot(tmp_path)
    process = grade(tmp_path / "hog.ipynb", "--memory", 3000, "--timeout", TIMEOUT,
                    "--json", tmp_path.parent / f"{tmp_path.name}.json", "--no-progress")
    records = json.loads((tmp_path.parent / f"{tmp_path.name}.json").read_text())
    assert [r["status"] for r in records] == ["error", "passed", "passed"], process.stdout
    assert "out of memory (--memory 3000 MB)" in records[0]["message"]
    assert snapshot(tmp_path) == before and grader_leftovers() == ([], [])


@pytest.mark.slow
def test_sandbox_blocks_writes_outside_its_folder_and_the_network(tmp_path):
    server, connections = listening_server()
    port = server.getsockname()[1]
    var_tmp = Path("/var/tmp") / f"companion-escape-{os.getpid()}-{tmp_path.name}"
    outside = [tmp_path / "escaped.txt", var_tmp.with_suffix(".sandboxed")]
    control = [tmp_path / "control.txt", var_tmp.with_suffix(".control")]
    write(tmp_path, {"escape.ipynb": warmup(extra=[escape(outside, port)]),
                     "control.ipynb": warmup(extra=[escape(control, port)])})
    try:
        sandboxed = grade(tmp_path / "escape.ipynb", "--sandbox", "--timeout", TIMEOUT,
                          "--no-progress")
        assert sandboxed.returncode == 0, sandboxed.stdout + sandboxed.stderr
        assert not any(path.exists() for path in outside) and connections == []
        unconfined = grade(tmp_path / "control.ipynb", "--timeout", TIMEOUT, "--no-progress")
        assert unconfined.returncode == 0, unconfined.stdout + unconfined.stderr
        assert all(path.exists() for path in control) and connections == [1]
    finally:
        server.close()
        for path in outside + control:
            path.unlink(missing_ok=True)
    assert grader_leftovers() == ([], [])


@pytest.mark.slow
def test_one_exercise_for_github_classroom(tmp_path):
    write(tmp_path, {"wrong.ipynb": warmup({"sigmoid": STUB})})
    process = grade(tmp_path / "wrong.ipynb", "--exercise", "tanh_prime", "--no-progress",
                    "--timeout", "7.5")  # fractional: was a TraitError (an Int in nbclient)
    assert process.returncode == 0, process.stdout + process.stderr
    rows = [line.split() for line in process.stdout.splitlines() if line.startswith("  ")]
    assert [row[0] for row in rows[1:]] == ["tanh_prime"]


@pytest.mark.slow
def test_the_notebook_timeout_bounds_a_whole_notebook(tmp_path):
    write(tmp_path, {"slow.ipynb": warmup(early=["import time\ntime.sleep(1.5)"] * 6)})
    process = grade(tmp_path / "slow.ipynb", "--timeout", "2", "--notebook-timeout", "4",
                    "--no-progress", "--json", tmp_path.parent / f"{tmp_path.name}.json")
    records = json.loads((tmp_path.parent / f"{tmp_path.name}.json").read_text())
    assert [r["status"] for r in records] == ["error"] * 3, process.stdout
    assert "ran past its time limit (4 s)" in records[-1]["message"]


def test_exit_code_for_one_exercise_is_zero_only_if_it_passed():
    def report(status):
        return grader.Report("n.ipynb", [grader.Row("n.ipynb", "sigmoid", status, 0, 1, "")])

    assert grader.exit_code([report("passed")], "sigmoid") == 0
    assert grader.exit_code([report("failed")], "sigmoid") == 1
    assert grader.exit_code([report("passed"), report("not started")], "sigmoid") == 1
    assert grader.exit_code([], "sigmoid") == 1


# --- checked before anything runs ----------------------------------------------------------


def one_line_error(process):
    assert process.returncode == 2, process.stdout + process.stderr
    assert process.stdout == ""
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in process.stderr, process.stderr
    return lines[0]


@pytest.fixture
def one_notebook(tmp_path):
    write(tmp_path, {"solved.ipynb": warmup()})
    return tmp_path / "solved.ipynb"


@pytest.mark.parametrize("option, make, expected", [
    ("--json", lambda tmp, nb: tmp, "is a folder"),
    ("--csv", lambda tmp, nb: tmp / "missing" / "g.json", "does not exist"),
    ("--gradescope", lambda tmp, nb: nb, "is one of the notebooks to grade"),
    ("--json", lambda tmp, nb: tmp / "other.ipynb", "is one of the notebooks to grade"),
    ("--csv", lambda tmp, nb: "/proc/grades.csv", "not writable"),
])
def test_output_paths_are_checked_before_anything_runs(one_notebook, option, make, expected):
    tmp = one_notebook.parent
    (tmp / "other.ipynb").write_bytes(one_notebook.read_bytes())
    before = snapshot(tmp)
    line = one_line_error(grade(tmp, option, make(tmp, one_notebook)))
    assert option in line and expected in line
    assert snapshot(tmp) == before


def test_the_same_file_twice_is_refused(one_notebook, tmp_path):
    line = one_line_error(grade(one_notebook, "--json", tmp_path / "g", "--csv", tmp_path / "g"))
    assert "must be different files" in line


@pytest.mark.parametrize("arguments", [
    [], ["x.ipynb", "--jobs", "0"], ["x.ipynb", "--timeout", "soon"], ["--frobnicate"],
    ["x.ipynb", "--timeout", "inf"], ["x.ipynb", "--timeout", "nan"],
    ["x.ipynb", "--timeout", "-1"], ["x.ipynb", "--timeout", "0"],
    ["x.ipynb", "--memory", "0"], ["x.ipynb", "--notebook-timeout", "inf"],
])
def test_bad_arguments_are_a_one_line_usage_error(arguments):
    assert "see --help" in one_line_error(grade(*arguments))


@pytest.mark.parametrize("arguments, expected", [
    (["--exercise", "sigmod"], "--exercise sigmod: unknown exercise"),
    (["--lesson", "99"], "--lesson 99: unknown lesson"),
])
def test_unknown_ids_are_a_one_line_usage_error(one_notebook, arguments, expected):
    assert expected in one_line_error(grade(one_notebook, *arguments))


def test_missing_bubblewrap_is_reported_clearly(one_notebook, tmp_path_factory):
    empty = tmp_path_factory.mktemp("no-bwrap")
    line = one_line_error(grade(one_notebook, "--sandbox", env={"PATH": str(empty)}))
    assert "bubblewrap (`bwrap`), which is not installed" in line


def test_bubblewrap_works_here():
    from companion.grading.sandbox import check_available

    assert check_available().endswith("bwrap")


def test_help_lists_the_options():
    process = grade("--help")
    assert process.returncode == 0
    for option in ("PATH", "--json FILE", "--csv FILE", "--gradescope FILE",
                   "--timeout SECONDS", "--notebook-timeout SECONDS", "--memory MB",
                   "--sandbox", "--lesson ID", "--exercise ID", "--jobs N"):
        assert option in process.stdout


@pytest.mark.slow
def test_a_fractional_timeout_is_accepted(tmp_path):
    """--timeout 2.5 was a TraitError in every row (nbclient's timeout is an Int). The
    notebook must reach the worker's kernel for this to be tested (one without a lesson id
    never does): an empty warm-up notebook has `sigmoid` evaluated in a kernel, found
    missing."""
    notebook = warmup()
    notebook.cells = []
    write(tmp_path, {"empty.ipynb": notebook})
    gradebook = tmp_path.parent / f"{tmp_path.name}.json"
    process = grade(tmp_path / "empty.ipynb", "--timeout", "2.5", "--exercise", "sigmoid",
                    "--no-progress", "--json", gradebook)
    records = json.loads(gradebook.read_text())
    assert [r["status"] for r in records] == ["error"], process.stdout + process.stderr
    assert "no function named `sigmoid`" in records[0]["message"]


def test_find_checks_reads_check_cells_only():
    from nbformat.v4 import new_markdown_cell, new_notebook

    notebook = new_notebook(cells=[
        new_markdown_cell('check("sigmoid", sigmoid)'),
        new_code_cell("# check('tanh_prime', tanh_prime)\nmycheck('x', f)\n_check('y', f)"),
        new_code_cell("exercises.check( 'sigmoid_prime' , f)\ncheck(\"sigmoid\", sigmoid)"),
        new_code_cell('check("sigmoid", sigmoid)  # again'),
    ])
    assert grader.find_checks(notebook) == {"sigmoid_prime": [2], "sigmoid": [2, 3]}


def test_short_message_keeps_the_first_line_within_the_width():
    assert grader.short_message("one\ntwo", 10) == "one"
    assert grader.short_message("a" * 20, 10) == "a" * 9 + "…"


def test_every_lesson_carries_its_lesson_id():
    from .lesson_tools import LESSONS, read

    ids = {path.stem: read(path).metadata.get("companion", {}).get("lesson")
           for path in LESSONS}
    assert ids == {stem: stem for stem in ids}
    assert set(grader.lesson_ids()) <= set(ids)
    for lesson in grader.lesson_ids():
        assert grader.lesson_exercises(lesson)


def test_the_lesson_id_script_is_idempotent_and_changes_only_metadata(tmp_path):
    from companion.grading import stamp

    from .lesson_tools import LESSONS

    for path in LESSONS:
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        assert stamp.stamp(copy) is False  # already stamped
    raw = json.loads((tmp_path / LESSONS[0].name).read_text())
    del raw["metadata"]["companion"]
    (tmp_path / "x.ipynb").write_text(json.dumps(raw, indent=1, sort_keys=True,
                                                 ensure_ascii=False) + "\n")
    assert stamp.stamp(tmp_path / "x.ipynb") is True
    assert json.loads((tmp_path / "x.ipynb").read_text())["metadata"]["companion"] == {
        "lesson": "x"}


def test_broken_inputs_never_raise_and_say_why(tmp_path):
    from companion.grading.notebooks import collect

    for name, raw in BROKEN.items():
        (tmp_path / name).write_bytes(raw)
    (tmp_path / "notes.txt").write_text("hello")
    found = collect([str(tmp_path), str(tmp_path / "notes.txt"), str(tmp_path / "missing")])
    problems = [submission.problem for submission in found]
    assert len(problems) == len(BROKEN) + 2, problems  # every file, not just the two paths
    assert all(problems), problems
    assert re.search("no such file or folder", problems[-1])
    assert "not a notebook" in problems[-2]


def test_the_gradebook_is_rewritten_atomically_as_each_notebook_finishes(tmp_path):
    from companion.grading.notebooks import collect
    from companion.grading.output import write_atomically

    for name, raw in BROKEN.items():
        (tmp_path / name).write_bytes(raw)
    gradebook = tmp_path.parent / f"{tmp_path.name}-grades.json"
    seen = []

    def on_report(reports):
        write_atomically(gradebook, grader.json_text(reports))
        seen.append(len(json.loads(gradebook.read_text())))

    reports = grader.grade_all(collect([str(tmp_path)]), grader.Options(), on_report=on_report)
    assert seen == list(range(1, len(BROKEN) + 1))
    assert grader.exit_code(reports) == 2
    temporary = [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{gradebook.name}")]
    assert temporary == []  # no temporary file left beside the gradebook


def test_a_trimmed_setup_cell_keeps_what_the_other_cells_use():
    """setup_for, which spares the grader tests' kernels the imports nobody uses: an import
    stays when a name it binds is used, any other statement when all the names it reads are
    bound (the seed goes with ``import torch``)."""
    setup = ("import matplotlib.pyplot as plt\nimport numpy as np\nimport torch\n\n"
             "from companion.exercises import check, hint, use  # noqa: F401\n\n"
             "torch.manual_seed(0)\nrng = np.random.default_rng(seed=0)  # every number")
    used = names_used("def sigmoid(z):\n    return np.exp(z)\n\ncheck('sigmoid', sigmoid)")
    assert used == {"sigmoid", "z", "np", "check"}
    assert setup_for(setup, used) == ("import numpy as np\n"
                                      "from companion.exercises import check, hint, use\n"
                                      "rng = np.random.default_rng(seed=0)")
    assert setup_for(setup, used | {"torch"}).splitlines()[1:4] == [
        "import torch", "from companion.exercises import check, hint, use",
        "torch.manual_seed(0)"]
    assert names_used("def broken(z)\n    return z") == set()  # a syntax error runs nothing


@pytest.mark.slow
def test_every_solved_lesson_passes_through_the_grader(tmp_path):
    """Each real lesson, its stubs replaced by the reference solutions, earns every point:
    the lesson ids, the evaluation points and the verdicts fit the real lessons. Only the
    cells that grading depends on are kept (the setup cell, the exercises' definitions and
    check cells): the lessons' figures and training runs are executed by the book build and
    the solved-lesson test already, and a third run would only cost minutes. The warm-up
    keeps its whole setup cell (matplotlib and torch imported, as in every lesson); the
    others keep only what their kept cells use (``import torch`` alone is 2 s a kernel)."""
    from .lesson_tools import LESSONS, read, solved

    write(tmp_path, {path.name: _grading_cells_only(solved(read(path))[0],
                                                    whole_setup=path.stem == "00_warmup")
                     for path in LESSONS})
    process = grade(tmp_path, "--jobs", 2, "--no-progress", "--timeout", 300,
                    "--json", tmp_path.parent / f"{tmp_path.name}.json", timeout=2400)
    records = json.loads((tmp_path.parent / f"{tmp_path.name}.json").read_text())
    assert process.returncode == 0, process.stdout
    assert {r["exercise"] for r in records} == set(exercises.ids())


def _grading_cells_only(nb, *, whole_setup=True):
    """The lesson's first code cell (its setup), its exercise definitions and its check
    cells, in their order; markdown and every other code cell dropped. Without
    ``whole_setup``, the setup keeps only what the other kept cells use."""
    checks = {index for indices in grader.find_checks(nb).values() for index in indices}
    code = [index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    keep = {code[0], *checks}
    keep |= {index for index in code
             if any(f"def {eid}(" in nb.cells[index].source for eid in exercises.ids())}
    nb.cells = [cell for index, cell in enumerate(nb.cells) if index in keep]
    if not whole_setup:
        used = set().union(*(names_used(cell.source) for cell in nb.cells[1:]))
        nb.cells[0].source = setup_for(nb.cells[0].source, used)
    return nb
