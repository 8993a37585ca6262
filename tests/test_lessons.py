"""Lessons: stored clean, listed in the book, and fully working once solved."""

import pytest
from nbclient import NotebookClient

from companion import exercises

from .lesson_tools import LESSONS, ROOT, checked_ids, read, solved, stream_text, toc_files

LESSON_IDS = [path.stem for path in LESSONS]


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
def test_lesson_runs_with_every_solution_filled_in_and_all_checks_pass(path):
    nb, filled = solved(read(path))
    ids_in_lesson = checked_ids(nb)
    assert sorted(filled) == sorted(ids_in_lesson), "every checked exercise needs a stub cell"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={
        "metadata": {"path": str(path.parent)}}).execute()
    outputs = "\n".join(stream_text(cell) for cell in nb.cells if cell.cell_type == "code")
    for exercise_id in ids_in_lesson:
        assert f"✓ {exercise_id}: passed" in outputs
    assert "not started" not in outputs
    assert "using the reference solution" not in outputs


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
