"""The exercise package finds its chapter modules by name and registers the exercises in the
order of the book. (That each solution box shows its registered reference's code is
``tests/test_lesson_forms.py``'s job.)"""

import inspect
import re
from pathlib import Path

import nbformat

from companion import exercises

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


def test_chapter_modules_are_discovered_in_book_order():
    found = exercises.chapter_modules()
    on_disk = sorted(path.stem for path in (ROOT / "companion/exercises").glob("*.py")
                     if re.fullmatch(r"ch\d\d_\w+", path.stem))
    assert found == ["warmup", *on_disk]
    assert "core" not in found and "cases" not in found


def test_exercises_are_registered_in_lesson_order():
    lessons = [exercises.get(eid).lesson for eid in exercises.ids()]
    assert lessons == sorted(lessons)
    assert set(lessons) == {f"lessons/{path.name}" for path in LESSONS if _has_solutions(path)}


def _has_solutions(lesson: Path) -> bool:
    return any(cell.cell_type == "markdown" and "{solution}" in cell.source
               for cell in nbformat.read(lesson, as_version=4).cells)


def test_every_reference_is_the_function_its_module_names():
    """A later ``def`` of the same name would make the book show one function and the checks
    use another."""
    for exercise_id in exercises.ids():
        reference = exercises.get(exercise_id).reference
        module = inspect.getmodule(reference)
        assert getattr(module, reference.__name__) is reference, exercise_id
