"""A Gradescope autograder folder for one lesson: ``python -m companion autograder LESSON
--out DIR``.

The folder holds what Gradescope's "zip upload" expects at its top level:

- ``setup.sh``: installs the course's pinned requirements (run once, when the image is
  built), torch first from PyTorch's CPU-only index (``CPU_TORCH_INDEX``): PyPI's Linux torch
  wheels bundle CUDA, gigabytes that a grader never uses;
- ``run_autograder``: grades ``$AUTOGRADER_ROOT/submission/*.ipynb`` on this lesson into
  ``$AUTOGRADER_ROOT/results/results.json`` (``AUTOGRADER_ROOT`` defaults to Gradescope's
  ``/autograder``; ``AUTOGRADER_PYTHON`` to ``python3``);
- ``requirements.txt``: the repository's pinned requirements, without its editable
  install of the repository itself;
- ``companion/``: a copy of this package (imported from ``$AUTOGRADER_ROOT/source``).
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${AUTOGRADER_PYTHON:-python3}"
# torch's CPU build first: PyPI's Linux wheels bundle CUDA (gigabytes the grader never uses).
# The pinned torch==X in requirements.txt is then already satisfied by X+cpu.
TORCH="$(grep -E '^torch==' requirements.txt)"
"$PYTHON" -m pip install --no-cache-dir "$TORCH" --index-url {index}
"$PYTHON" -m pip install --no-cache-dir -r requirements.txt
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission; it must always write results/results.json.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{AUTOGRADER_PYTHON:-python3}}"
mkdir -p "$ROOT/results"
shopt -s nullglob
notebooks=("$ROOT"/submission/*.ipynb)
if [ ${{#notebooks[@]}} -eq 0 ]; then notebooks=("$ROOT/submission"); fi
cd "$ROOT/results"
PYTHONPATH="$ROOT/source${{PYTHONPATH:+:$PYTHONPATH}}" "$PYTHON" -m companion grade \\
  "${{notebooks[@]}}" --lesson {lesson} --timeout {timeout:g} --no-progress \\
  --gradescope "$ROOT/results/results.json"
status=$?
# 0: all passed, 1: some exercise did not pass, 2: a notebook could not be graded;
# each is a valid result for Gradescope, which reads results.json.
if [ "$status" -le 2 ] && [ -s "$ROOT/results/results.json" ]; then exit 0; fi
exit "$status"
"""


def write_autograder(lesson: str, out: str | Path, timeout: float = 120.0) -> Path:
    """Write the autograder folder for ``lesson`` (an id such as ``00_warmup``, or the
    lesson notebook's path) into ``out`` (created; must be empty if it exists)."""
    from companion.grading.run import lesson_ids

    lesson = Path(lesson).stem if lesson.endswith(".ipynb") else lesson
    if lesson not in lesson_ids():
        raise ValueError(f"unknown lesson {lesson!r}; known: {', '.join(lesson_ids())}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out}: exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    _script(out / "setup.sh", SETUP.replace("{index}", CPU_TORCH_INDEX))
    _script(out / "run_autograder", RUN.format(lesson=lesson, timeout=timeout))
    (out / "requirements.txt").write_text(pinned_requirements(), encoding="utf-8")
    shutil.copytree(ROOT / "companion", out / "companion",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return out


def pinned_requirements() -> str:
    """The repository's requirements, minus the editable install of the repository (the
    autograder carries the package itself)."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.strip().startswith(("-e", "--editable"))]
    return "\n".join(kept) + "\n"


def _script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
