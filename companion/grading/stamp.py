"""Write each lesson's id into its notebook's metadata: ``python -m companion.grading.stamp``.

The grader grades a notebook on the exercises of the lesson named in
``metadata["companion"]["lesson"]``; the id is the notebook's file name without extension
(as the exercise registry's ``lesson`` field names it). Idempotent, and it keeps the
notebooks' stored JSON formatting (one-space indent, sorted keys), so that ``git diff``
shows only the added lines. Run it after adding a lesson.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LESSONS = Path(__file__).resolve().parents[2] / "lessons"


def stamp(path: Path) -> bool:
    """Add or correct the lesson id of one notebook; True when the file changed."""
    raw = path.read_text(encoding="utf-8")
    notebook = json.loads(raw)
    notebook.setdefault("metadata", {}).setdefault("companion", {})["lesson"] = path.stem
    text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if text == raw:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def main(folder: Path = LESSONS) -> int:
    for path in sorted(folder.glob("*.ipynb")):
        if stamp(path):
            print(f"{path}: lesson id {path.stem!r} written")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else LESSONS))
