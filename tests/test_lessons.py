"""Lessons: stored clean, listed in the book, and fully working once solved."""

import subprocess
import sys

import nbformat
import pytest

from companion import exercises

from .conftest import LESSON_ENV
from .lesson_tools import (
    CHECK_STATUS_SANITIZER,
    LESSONS,
    ROOT,
    all_checks_passed_cell,
    checked_ids,
    figures_as_text_cell,
    read,
    solved,
    toc_files,
    without_fallback_notices,
)

LESSON_IDS = [path.stem for path in LESSONS]
# ``python -m pytest``, 2.5 s quicker to start (see companion/quick_imports.py).
PYTEST_WITHOUT_THE_IRI_GRAMMAR = (
    "import sys; from companion.quick_imports import skip_the_iri_grammar; "
    "skip_the_iri_grammar(); import pytest; sys.exit(pytest.main(sys.argv[1:]))")


def test_there_are_lessons():
    assert LESSONS, "lessons/ holds no notebook"


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_lesson_is_stored_without_outputs(path):
    nb = read(path)
    dirty = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; strip them"


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_lesson_uses_the_python3_kernel(path):
    kernelspec = read(path).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec is {kernelspec}"


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_lesson_is_in_the_table_of_contents(path):
    assert f"lessons/{path.stem}" in toc_files(), f"{path.name} is missing from _toc.yml"


def test_every_registered_exercise_is_checked_in_its_lesson():
    for exercise_id in exercises.ids():
        lesson = exercises.get(exercise_id).lesson
        assert lesson, f"{exercise_id} names no lesson"
        nb = read(ROOT / lesson)
        assert exercise_id in checked_ids(nb), f"{lesson} has no check cell for {exercise_id}"


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_solved_lesson_passes_every_check_and_reproduces_the_book(built_book, path, tmp_path):
    """Each lesson runs twice per test session: unsolved in the book build, and here, solved.

    The solved copy is the notebook the build executed, with every stub replaced by its
    reference solution, a first cell that makes figures display as text only (images are not
    compared; the build drew them) and a last cell asserting that every check passed. nbval
    runs it and compares each deterministic output (text and streams; images and cells tagged
    ``nbval-ignore-output`` are skipped) with the book's: seeded lessons give the same numbers
    with the reference solutions as with the fallbacks the unsolved lesson uses. Only the
    lines that must differ (a check's status, ``use``'s fallback notice) are set aside.
    """
    build_dir, _ = built_book
    executed = read(build_dir / "jupyter_execute" / "lessons" / path.name)
    unrun = [index for index, cell in enumerate(executed.cells)
             if cell.cell_type == "code" and cell.execution_count is None]
    assert not unrun, (f"the build's executed {path.name} has cells {unrun} without an "
                       "execution count: nbval compares no output there")
    nb, filled = solved(executed)
    ids_in_lesson = checked_ids(nb)
    assert sorted(filled) == sorted(ids_in_lesson), "every checked exercise needs a stub cell"
    nb.cells.insert(0, figures_as_text_cell())
    nb.cells.append(all_checks_passed_cell(ids_in_lesson))
    solved_path = tmp_path / path.name
    nbformat.write(without_fallback_notices(nb), solved_path)
    sanitize = tmp_path / "sanitize.cfg"
    sanitize.write_text(CHECK_STATUS_SANITIZER)
    proc = subprocess.run(
        [sys.executable, "-c", PYTEST_WITHOUT_THE_IRI_GRAMMAR, "--nbval", "--nbval-current-env",
         "-q", "-p", "no:cacheprovider", "--nbval-sanitize-with", str(sanitize),
         "--rootdir", str(tmp_path), str(solved_path)],
        capture_output=True, text=True, cwd=ROOT, env=LESSON_ENV,  # threads as in the build
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_tagged_multiline_equations_use_an_equation_environment(path):
    """Sphinx wraps a ``$$...$$`` block containing ``\\\\`` in ``split``, where MathJax refuses
    ``\\tag`` ("\\tag not allowed in split environment"): such blocks must be written as
    ``\\begin{equation*} ... \\tag{...} \\end{equation*}``."""
    for index, cell in enumerate(read(path).cells):
        if cell.cell_type != "markdown":
            continue
        for block in cell.source.split("$$")[1::2]:
            assert not ("\\\\" in block and "\\tag" in block), (
                f"{path.name} cell {index}: use \\begin{{equation*}} for {block.strip()[:60]!r}"
            )


def test_a_fallback_notice_is_removed_with_its_newline_however_the_stream_was_split():
    """The kernel may send ``use``'s notice and its newline in two stream messages (it did
    in one CI run); the line that follows must not start with a stray newline."""
    notice = "(param_count: using the reference solution, until yours passes)"
    rest = "rnn : H = 68\n"
    for pieces in ([notice + "\n" + rest], [notice, "\n" + rest], [notice + "\n", rest]):
        cell = nbformat.v4.new_code_cell("x = use('param_count', param_count)")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=piece)
                        for piece in pieces]
        nb = without_fallback_notices(nbformat.v4.new_notebook(cells=[cell]))
        assert [o.text for o in nb.cells[0].outputs] == [rest], pieces
