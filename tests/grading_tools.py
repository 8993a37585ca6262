"""Helpers of the grader tests: submissions built from the real warm-up lesson, the command
line, and checks that nothing is left behind."""

import ast
import builtins
import copy
import os
import subprocess
import sys
import tempfile

import nbformat
import psutil
from nbformat.v4 import new_code_cell

from companion import exercises

from .lesson_tools import ROOT, _solution_source, _stub_name, read

WARMUP = read(ROOT / "lessons" / "00_warmup.ipynb")
WARMUP_IDS = ["sigmoid", "sigmoid_prime", "tanh_prime"]
STUB = object()


def mutant_source(exercise_id, index):
    return (f"{exercise_id} = __import__('companion.exercises', fromlist=['get'])"
            f".get({exercise_id!r}).mutants[{index}].fn")


def warmup(defs=None, after=None, checks=None, *, full=False, lesson="00_warmup",
           extra=None, early=None):
    """The warm-up lesson with its stubs replaced: ``defs[id]`` (source, or STUB to keep
    the stub; default the reference solution), ``after[id]`` a cell inserted after the
    stub's cell, ``checks[id]`` replaces the check cell's source. Without ``full``, the
    cells that only illustrate (plots, demos) are left out to keep the tests fast, and the
    setup cell keeps only what the other cells use (``setup_for``: ``import torch`` alone is
    2 s of every kernel, matplotlib half a second; the real lessons go through the grader in
    ``test_every_solved_lesson_passes_through_the_grader``, the warm-up with its whole setup
    cell).
    ``early`` cells come right after the setup cell, ``extra`` cells at the end."""
    defs, after, checks = defs or {}, after or {}, checks or {}
    notebook = copy.deepcopy(WARMUP)
    cells = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            name = _stub_name(cell.source)
            checked = [i for i in WARMUP_IDS if f'check("{i}"' in cell.source]
            if name:
                source = defs.get(name, _solution_source(name))
                if source is not STUB:
                    cell.source = source
            elif checked and checked[0] in checks:
                cell.source = checks[checked[0]]
            elif not full and index > 1 and not checked and "use(" not in cell.source:
                continue
            cells.append(cell)
            if index == 1:
                cells += [new_code_cell(source) for source in (early or [])]
            if name in after:
                cells.append(new_code_cell(after[name]))
        else:
            cells.append(cell)
    cells += [new_code_cell(source) for source in (extra or [])]
    if not full:
        setup = notebook.cells[1]
        used = set().union(*(names_used(cell.source) for cell in cells
                             if cell.cell_type == "code" and cell is not setup))
        setup.source = setup_for(setup.source, used)
    notebook.cells = cells
    if lesson is None:
        notebook.metadata.pop("companion", None)
    else:
        notebook.metadata["companion"] = {"lesson": lesson}
    return notebook


def names_used(source: str) -> set[str]:
    """The names a cell's code reads or writes (none if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def setup_for(setup: str, used: set[str]) -> str:
    """The statements of a lesson's setup cell that ``used`` needs: the imports binding a
    used name, then every other statement whose names are all bound (``torch.manual_seed(0)``
    goes with ``import torch``)."""
    kept, bound = [], set(dir(builtins))
    for statement in ast.parse(setup).body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            names = {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
            if not names & used:
                continue
        else:
            names = {node.id for node in ast.walk(statement)
                     if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
            loaded = {node.id for node in ast.walk(statement)
                      if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
            if not loaded <= bound:
                continue
        kept.append(ast.get_source_segment(setup, statement))
        bound |= names
    return "\n".join(kept)


def grade(*arguments, cwd=None, env=None, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "companion", "grade", *map(str, arguments)],
        capture_output=True, text=True, encoding="utf-8", timeout=timeout, cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def write(folder, notebooks):
    for name, notebook in notebooks.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, folder / name)


def snapshot(folder):
    """Every file and folder under ``folder`` (hidden ones too): bytes and mtime."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            content = open(path, "rb").read() if name in files else None
            state[os.path.relpath(path, folder)] = (content, os.stat(path).st_mtime_ns)
    return state


def grader_leftovers():
    """Temporary folders and processes of the grader that outlived their run (started by this
    test worker: under pytest-xdist, each worker has its own temporary folder)."""
    folders = [name for name in os.listdir(tempfile.gettempdir())
               if name.startswith("companion-grade-")]
    processes = []
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    for process in psutil.process_iter():
        try:
            environment = process.environ()
            if ("COMPANION_GRADE_TOKEN" in environment
                    and environment.get("PYTEST_XDIST_WORKER") == worker):
                processes.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return folders, processes


def all_ids():
    return exercises.ids()
