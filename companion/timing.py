"""Measure how long each lesson takes to run, for the "Running the course" page.

``python -m companion.timing`` executes every notebook in ``lessons/`` as shipped (exercises
not started) from top to bottom in a fresh ``python3`` kernel, the way a reader's "Run All"
does, and times it with a wall clock (kernel start included). It then writes

* ``book/_data/lesson_times.json``: the measurements and the machine they were taken on;
* ``book/_generated/lesson_times.md``: the table that ``book/running.md`` includes.

Both files are committed; the book build only reads them (it never times anything). Rerun
the command whenever a lesson is added, removed or changes substantially: a test checks that
the file lists exactly the lessons in ``lessons/``.

By default the kernels are pinned to 2 CPU cores (``--cpus``, Linux only), to stand for the
two-core laptop the course is written for, also when the machine measuring has more.
Options: ``--repeat N`` runs each lesson N times and keeps the median; ``--timeout`` is the
per-cell limit (the book build's, 120 s, by default).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

from companion.quick_imports import skip_the_iri_grammar

skip_the_iri_grammar()  # before nbformat: 2.5 s saved (see companion/quick_imports.py)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "lessons"
JSON_PATH = ROOT / "book" / "_data" / "lesson_times.json"
MARKDOWN_PATH = ROOT / "book" / "_generated" / "lesson_times.md"
COMMAND = "python -m companion.timing"
DEFAULT_TIMEOUT = 120.0


def lesson_paths(lessons_dir: Path = LESSONS_DIR) -> list[Path]:
    """The lessons, in course order (their file names start with the chapter number)."""
    return sorted(p for p in lessons_dir.glob("*.ipynb") if not p.name.startswith("."))


def measured_seconds(json_path: Path = JSON_PATH) -> dict[str, float]:
    """The last measured run time of each lesson, by notebook name without ``.ipynb``
    (``{"00_warmup": 6.8, ...}``); empty when the file is missing or unreadable. The book build
    and the test scheduler start the longest lessons first with it."""
    try:
        lessons = json.loads(json_path.read_text())["lessons"]
        return {Path(entry["notebook"]).stem: float(entry["seconds"]) for entry in lessons}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def lesson_title(notebook) -> str:
    """The text of the notebook's first ``# `` heading (its page title in the book)."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return ""


def time_lesson(path: Path, timeout: float = DEFAULT_TIMEOUT) -> float:
    """Seconds to run the notebook at ``path`` in a fresh kernel, its folder as working
    directory (as the book build does); the notebook file itself is not modified."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _pin_cpus(count: int | None) -> int:
    """Restrict this process (and so the kernels it starts) to ``count`` CPU cores where the
    OS allows it; returns the number of cores the kernels may use."""
    if hasattr(os, "sched_getaffinity"):
        available = sorted(os.sched_getaffinity(0))
        if count is not None and count < len(available):
            os.sched_setaffinity(0, available[:count])
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info(cpus_used: int) -> dict:
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "cpus_used": cpus_used,
        "cpu_model": _cpu_model(),
        "platform": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "matplotlib": _version("matplotlib"),
    }


def measure(paths: list[Path], repeat: int = 1, timeout: float = DEFAULT_TIMEOUT,
            cpus: int | None = 2, log=print) -> dict:
    """Time every lesson; returns the record written to ``lesson_times.json``."""
    cpus_used = _pin_cpus(cpus)
    lessons = []
    for path in paths:
        log(f"{path.name}: running...")
        runs = []
        for attempt in range(repeat):
            seconds = time_lesson(path, timeout=timeout)
            runs.append(seconds)
            log(f"{path.name}: {seconds:.1f} s" + (f" (run {attempt + 1}/{repeat})"
                                                   if repeat > 1 else ""))
        notebook = nbformat.read(path, as_version=4)
        lessons.append({
            "notebook": path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT)
            else path.name,
            "title": lesson_title(notebook),
            "code_cells": sum(cell.cell_type == "code" for cell in notebook.cells),
            "seconds": round(statistics.median(runs), 1),
            "runs": [round(s, 2) for s in runs],
        })
    return {
        "generated_by": COMMAND,
        "what": "wall-clock seconds to run each lesson as shipped (exercises not started), "
                "top to bottom, in a fresh python3 kernel, kernel start included",
        "machine": machine_info(cpus_used),
        "timeout_per_cell_s": timeout,
        "lessons": lessons,
        "total_seconds": round(sum(lesson["seconds"] for lesson in lessons), 1),
    }


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def render_markdown(record: dict) -> str:
    """The MyST table included by ``book/running.md`` (a pure function of the record)."""
    machine = record["machine"]
    lines = [
        "% Generated by `python -m companion.timing` from book/_data/lesson_times.json: "
        "do not edit by hand.",
        "",
        "| Lesson | Notebook | Time to run |",
        "| --- | --- | ---: |",
    ]
    for lesson in record["lessons"]:
        title = lesson["title"].replace("|", "\\|") or "(untitled)"
        lines.append(f"| {title} | `{lesson['notebook']}` | {_duration(lesson['seconds'])} |")
    lines.append(f"| **All lessons** | | **{_duration(record['total_seconds'])}** |")
    cores = machine["cpus_used"]
    lines += [
        "",
        f"Measured on {machine['date']} by `{record['generated_by']}`: each lesson run top to "
        f"bottom as shipped, in a fresh kernel (its start included), on {cores} CPU "
        f"core{'s' if cores != 1 else ''} ({machine['cpu_model']}, "
        f"{machine['platform']}), with Python {machine['python']}, PyTorch "
        f"{machine['torch']}, NumPy {machine['numpy']} and Matplotlib "
        f"{machine['matplotlib']}.",
        "",
    ]
    return "\n".join(lines)


def write(record: dict, json_path: Path = JSON_PATH, markdown_path: Path = MARKDOWN_PATH):
    json_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    markdown_path.write_text(render_markdown(record), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="lessons to time (default: every notebook in lessons/)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per lesson (median kept)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"time limit per cell in seconds (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--cpus", type=int, default=2,
                        help="CPU cores the kernels may use (default 2; 0 = all)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the table, write nothing")
    arguments = parser.parse_args(argv)
    paths = [p.resolve() for p in arguments.notebooks] or lesson_paths()
    if not paths:
        print(f"{COMMAND}: no lessons found in {LESSONS_DIR}", file=sys.stderr)
        return 2
    try:
        record = measure(paths, repeat=max(1, arguments.repeat), timeout=arguments.timeout,
                         cpus=arguments.cpus or None,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        print(f"{COMMAND}: a lesson did not run to the end, nothing written:\n{error}",
              file=sys.stderr)
        return 1
    if arguments.dry_run:
        print(render_markdown(record))
        return 0
    write(record)
    print(f"wrote {JSON_PATH.relative_to(ROOT)} and {MARKDOWN_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
