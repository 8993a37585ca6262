"""Reading submissions: which files to grade, and each one's cells and lesson id.

Nothing here raises on a broken submission: each input becomes a :class:`Submission`,
either readable (cells and lesson id) or with the one-line ``problem`` that makes it an
``error`` row.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 64 * 2**20
CELL_TYPES = ("code", "markdown", "raw")

_CHECK_CALL = re.compile(r"""\bcheck\(\s*(["'])([A-Za-z_][\w.-]*)\1""")


def display_name(path: str | os.PathLike) -> str:
    """The path as printable text, whatever bytes its name holds (invalid UTF-8 shown as
    ``\\xNN``)."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


@dataclass
class Submission:
    """One input: its name for the gradebook, and its cells and lesson id, or why it
    cannot be graded."""

    name: str
    path: Path | None = None
    cells: list[dict] = field(default_factory=list)
    lesson: str | None = None
    problem: str = ""


def collect(paths: list[str]) -> list[Submission]:
    """Every input: each file given, every ``.ipynb`` under each folder (recursively,
    skipping ``.ipynb_checkpoints``), without duplicates, in a stable order. A path that
    does not exist or holds no notebooks is a :class:`Submission` with a problem, and so is
    every entry of a folder that is a symbolic link or not a regular file: each entry gets
    its own row, and a link to a classmate's notebook cannot take that notebook's row."""
    found: list[Submission] = []
    seen: set[str] = set()
    for argument in paths:
        path = Path(argument)
        if path.is_dir():
            notebooks = sorted(
                (p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts),
                key=lambda p: os.fsencode(p),
            )
            if not notebooks:
                found.append(Submission(display_name(path), problem="no notebooks (.ipynb) "
                                                                    "in this folder"))
            for notebook in notebooks:
                if notebook.is_symlink():
                    found.append(Submission(display_name(notebook), problem=(
                        "a symbolic link, not a notebook: submit the file itself")))
                elif not notebook.is_file():
                    found.append(Submission(display_name(notebook),
                                            problem="not a regular file"))
                else:
                    _add(found, seen, notebook)
        elif path.is_file():
            if path.suffix != ".ipynb":
                found.append(Submission(display_name(path),
                                        problem="not a notebook (expected a .ipynb file)"))
            else:
                _add(found, seen, path)
        else:
            found.append(Submission(display_name(path), problem="no such file or folder"))
    return found


def _add(found: list[Submission], seen: set[str], path: Path) -> None:
    key = os.path.realpath(path)
    if key not in seen:
        seen.add(key)
        try:
            found.append(read(path))
        except Exception as error:  # noqa: BLE001 - one input must not stop the others
            found.append(Submission(display_name(path), problem=(
                f"cannot be read ({type(error).__name__}: {_short(error)})")))


def read(path: Path) -> Submission:
    """The submission at ``path``: its cells (type and source text only: saved outputs,
    attachments and metadata are never used) and its lesson id."""
    submission = Submission(display_name(path), path=path)
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError as error:
        submission.problem = f"cannot be read ({error.strerror or error})"
        return submission
    if len(raw) > MAX_NOTEBOOK_BYTES:
        submission.problem = f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
        return submission
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark is allowed
    except UnicodeDecodeError:
        submission.problem = "not a readable notebook (not UTF-8 text)"
        return submission
    except (ValueError, RecursionError, MemoryError) as error:  # ValueError: also a number
        # of more than 4300 digits, which json refuses without a JSONDecodeError
        submission.problem = f"not a readable notebook (invalid JSON: {_short(error)})"
        return submission
    try:
        submission.cells, submission.lesson = _parse(data)
    except ValueError as error:
        submission.problem = f"not a readable notebook ({error})"
    return submission


def _parse(data) -> tuple[list[dict], str | None]:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got a {type(data).__name__}")
    if not isinstance(data.get("nbformat"), int) or data["nbformat"] != 4:
        raise ValueError(f"expected nbformat 4, got {str(data.get('nbformat'))[:20]}")
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise ValueError("no list of cells")
    parsed = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise ValueError(f"cell {number} is a {type(cell).__name__}, not an object")
        cell_type = cell.get("cell_type")
        if cell_type not in CELL_TYPES:
            raise ValueError(f"cell {number} has no valid cell_type ({str(cell_type)[:20]})")
        parsed.append({"cell_type": cell_type, "source": _source(cell.get("source"), number)})
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        raise ValueError("its metadata is not an object")
    return parsed, lesson_of(metadata)


def _source(source, number: int) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise ValueError(f"cell {number}'s source is not text")


def lesson_of(metadata: dict) -> str | None:
    """The lesson id stored in a notebook's metadata (``{"companion": {"lesson": id}}``)."""
    companion = metadata.get("companion")
    lesson = companion.get("lesson") if isinstance(companion, dict) else None
    return lesson if isinstance(lesson, str) else None


def _short(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:120]


def find_checks(notebook) -> dict[str, list[int]]:
    """``{exercise_id: [indices of the code cells that check it]}``, in notebook order.

    A check is a call ``check("<id>", ...)`` or ``<module>.check("<id>", ...)`` on a line
    that is not a comment. (The grader does not need the check cells, which a learner may
    delete or rewrite; this is for tests and tools that look at the lessons.)"""
    checks: dict[str, list[int]] = {}
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        code = "\n".join(line for line in source.splitlines()
                         if not line.lstrip().startswith("#"))
        ids = [match.group(2) for match in _CHECK_CALL.finditer(code)]
        for exercise_id in dict.fromkeys(ids):
            checks.setdefault(exercise_id, []).append(index)
    return checks
