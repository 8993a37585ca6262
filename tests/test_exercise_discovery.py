"""The exercise package finds its chapter modules by name, and every solution box in the
lessons (``{literalinclude}`` with ``:pyobject:``) shows the registered reference of an
exercise of that lesson."""

import inspect
import re
from pathlib import Path

import nbformat
import pytest

from companion import exercises

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
INCLUDE = re.compile(r"```\{literalinclude\}\s+(?P<path>\S+)\s*\n(?P<options>(?::[^\n]*\n)*)")


def test_chapter_modules_are_discovered_in_book_order():
    found = exercises.chapter_modules()
    on_disk = sorted(path.stem for path in (ROOT / "companion/exercises").glob("*.py")
                     if re.fullmatch(r"ch\d\d_\w+", path.stem))
    assert found == ["warmup", *on_disk]
    assert "core" not in found and "cases" not in found


def test_exercises_are_registered_in_lesson_order():
    lessons = [exercises.get(eid).lesson for eid in exercises.ids()]
    assert lessons == sorted(lessons)
    assert set(lessons) == {f"lessons/{path.name}" for path in LESSONS
                            if _solution_includes(path)}


def _solution_includes(lesson: Path) -> list[tuple[Path, str]]:
    """``(included file, pyobject)`` of every solution box of ``lesson``."""
    found = []
    for cell in nbformat.read(lesson, as_version=4).cells:
        if cell.cell_type != "markdown" or "{solution}" not in cell.source:
            continue
        for match in INCLUDE.finditer(cell.source):
            options = dict(re.findall(r":(\w+):\s*(\S+)", match["options"]))
            if "pyobject" in options:
                found.append(((lesson.parent / match["path"]).resolve(), options["pyobject"]))
    return found


@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_every_solution_box_shows_a_registered_reference(lesson):
    registered = [exercises.get(eid) for eid in exercises.ids()
                  if exercises.get(eid).lesson == f"lessons/{lesson.name}"]
    shown = _solution_includes(lesson)
    assert len(shown) == len(registered)
    for exercise in registered:
        reference = exercise.reference
        source_file = Path(inspect.getsourcefile(reference)).resolve()
        assert (source_file, reference.__name__) in shown, (
            f"{exercise.id}: no solution box includes {source_file.name}:{reference.__name__}")
        module = inspect.getmodule(reference)
        assert getattr(module, reference.__name__) is reference  # not shadowed by a later def
