"""Helpers shared by the lesson and book tests: find lessons, fill in their exercises with the
reference solutions, execute them."""

import ast
import builtins
import inspect
import re
from pathlib import Path

import nbformat
import yaml

from companion import exercises, grader

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))
# Characters of a printed line that a lesson page shows without scrolling sideways (its code
# column at a desktop width; a phone scrolls either way).
BOOK_COLUMN = 82


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def figure_captions(path: Path) -> list[tuple[str, str]]:
    """``(number, caption)`` of each figure of a lesson, in order, from its caption cells
    (``book/_ext/lesson_forms.py``): ``("Fig. 4.3", "How much of the gradient ...")``."""
    from lesson_forms import CAPTION_TAG, caption_number, caption_text

    return [(caption_number(cell), caption_text(cell)) for cell in read(path).cells
            if CAPTION_TAG in cell.metadata.get("tags", [])]


def toc_files() -> set[str]:
    """Every ``file:`` entry of _toc.yml (and the root), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = {toc["root"]}

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.add(str(Path(node["file"]).with_suffix("")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return found


def checked_ids(nb) -> list[str]:
    """Exercise ids named by the notebook's check cells, in order (as the grader finds them)."""
    return list(grader.find_checks(nb))


def _stub_name(source: str) -> str | None:
    """The function name if the cell is a single stub ``def`` of a registered exercise."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if len(defs) != 1 or defs[0].name not in exercises.ids():
        return None
    return defs[0].name if "raise NotImplementedError" in source else None


def _solution_source(exercise_id: str) -> str:
    """The reference's source, renamed to the exercise id, with the imports it needs."""
    reference = exercises.solution(exercise_id)
    source = inspect.getsource(reference)
    source = re.sub(rf"^def {reference.__name__}\(", f"def {exercise_id}(", source, flags=re.M)
    module = reference.__module__
    needed = sorted(
        name
        for name in _global_names(reference.__code__)
        if name in reference.__globals__ and not hasattr(builtins, name)
        and name not in exercises.ids()  # the lesson defines (and checks) those itself
    )
    imports = f"from {module} import {', '.join(needed)}\n" if needed else ""
    return imports + source


def _global_names(code) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _global_names(const)
    return names


def solved(nb) -> tuple[nbformat.NotebookNode, list[str]]:
    """A copy of the notebook whose exercise stubs are replaced by the reference solutions."""
    nb = nbformat.from_dict(nb)
    filled = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        name = _stub_name(cell.source)
        if name:
            cell.source = _solution_source(name)
            filled.append(name)
    return nb, filled


# nbval sanitizer: a check prints its status ("… x: not started." and two indented lines
# saying what to do and what happens until then, unsolved; "✓ x: passed — …" solved); both
# become one empty line before outputs are compared.
_CHECK_STATUS = re.compile(
    r"(?m)^(?:✓ \S+: passed\b[^\n]*"
    r"|… \S+: not started\b[^\n]*\n  Fill in the function\b[^\n]*\n  \(Until then[^\n]*)$")
CHECK_STATUS_SANITIZER = f"[check status]\nregex: {_CHECK_STATUS.pattern}\nreplace: \n"
_FALLBACK_NOTICE = re.compile(r"(?m)^\(\S+: using the reference solution\b[^\n]*\)\n?")


def without_fallback_notices(nb) -> nbformat.NotebookNode:
    """The notebook with ``use``'s fallback notice removed from every stream output (a
    solved lesson never prints it), dropping outputs that held nothing else. Streams are
    first joined with nbval's own ``coalesce_streams`` (the kernel sends a print's text and its
    newline in one message or two, as it happens), so that the notice's line goes with its
    newline."""
    from nbval.plugin import coalesce_streams  # 0.25 s: only the solved-lesson tests need it

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in coalesce_streams(cell.get("outputs", [])):
            if output.output_type == "stream" and _FALLBACK_NOTICE.search(output.text):
                output.text = _FALLBACK_NOTICE.sub("", output.text)
                if not output.text:
                    continue
            kept.append(output)
        cell.outputs = kept
    return nb


def figures_as_text_cell() -> nbformat.NotebookNode:
    """A first cell for a solved run, which compares text and never images: figures are
    still made and displayed, but as their text (``<Figure size … with 2 Axes>``, what the
    comparison reads), not rasterised to PNG, which took up to a third of a lesson's time.
    The book build, which executes each lesson too, draws every figure, from the same numbers
    (the comparison checks that)."""
    return nbformat.v4.new_code_cell("%config InlineBackend.figure_formats = set()")


def all_checks_passed_cell(exercise_ids: list[str]) -> nbformat.NotebookNode:
    """A last cell that fails unless every exercise of the lesson passed its check."""
    expected = {exercise_id: "passed" for exercise_id in exercise_ids}
    return nbformat.v4.new_code_cell(
        "from companion.exercises import results as _results\n"
        "_statuses = {key: record['status'] for key, record in _results().items()}\n"
        f"assert _statuses == {expected!r}, _statuses"
    )
