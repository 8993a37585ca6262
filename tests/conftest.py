"""Shared fixtures: one strict build of the book per test run, shared by every worker.

The suite runs on pytest-xdist workers (``-n auto`` in ``pyproject.toml``; ``-n 0`` runs it in
one process). If ``_build`` holds a strict build of exactly the current sources (the README's
first command leaves one; ``book/_ext/build_stamp.py`` stamps it), the tests use it as it is.
Otherwise the first worker that needs the book builds it into ``_build`` (where the README's
command puts it, so the next run reuses it) in the background, as soon as the session knows it
needs one, so the unit tests run on the other cores meanwhile; the other workers wait for it
on a file lock and reuse it.

Tests that use the build, a JupyterLab or a browser (directly or through another fixture) are
marked ``slow``; ``python -m pytest -m "not slow"`` is the developer's quick subset and builds
nothing. Only tests that use the build start one.

Scheduling (``pytest_xdist_make_scheduler``): a test module is one unit of work, so that its
module and session fixtures (a JupyterLab, a browser, the PDF) are made once, on one worker;
a class is one unit too (the grader's class graded at once). The modules in
``ONE_UNIT_PER_TEST`` hold independent kernel-running tests, each its own unit. Units go out
longest first (``COST_HINTS``: rough seconds measured on 2 cores, which only decide the order);
when the book still has to be built, the units that need it go last, so the rest runs
meanwhile. Each worker has its own temporary folder (``TMPDIR``), so that the grader's
"nothing left behind" checks see only their own worker's folders.
"""

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from filelock import FileLock

from companion.quick_imports import skip_the_iri_grammar

# 2.5 s saved in every test process (see companion/quick_imports.py), before anything imports
# jsonschema. That is why pyproject.toml loads nbval with ``-p no:nbval``: it would import
# nbformat before this file runs; tests/test_lessons.py runs nbval in its own process.
skip_the_iri_grammar()

ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = ROOT / "_build"
BUILD_LOG = BUILD_DIR / "pytest-build.log"
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from build_stamp import read_stamp, sources_hash  # noqa: E402

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# The environment the book build runs the lessons in (library threads untouched), for the
# tests that must reproduce the book's numbers (tests/test_lessons.py).
LESSON_ENV = dict(os.environ)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker for NumPy's BLAS and torch, set before either is imported: the
    # workers already use every core, and spinning BLAS threads would fight over them.
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))

SLOW_FIXTURES = {"built_book", "lab", "playwright_driver"}  # a build, a JupyterLab, a browser
LESSON_NAMES = sorted(f"lessons/{path.stem}" for path in (ROOT / "lessons").glob("*.ipynb"))
ONE_UNIT_PER_TEST = ("tests/test_lessons.py", "tests/test_grader.py")
MADE_ONCE = ("lab", "book_site", "pdf", "graded")  # expensive fixtures: all their tests, one unit
COST_HINTS = {  # unit -> rough seconds in a full run (2 cores, 2026-11-30); only the order
    # depends on them. Modules not listed count 1 s; "tests/test_grader.py" is the hint for
    # each of its tests (each its own unit), the kernel-running ones taking 4-10 s.
    "tests/test_lab.py": 118, "tests/test_browser.py": 63, "tests/test_pdf.py": 61,
    "tests/test_grader.py::TestOneClassGradedAtOnce": 40,
    "tests/test_grader.py::test_every_solved_lesson_passes_through_the_grader": 16,
    "tests/test_exercises.py": 15, "tests/test_book.py": 13, "tests/test_diagrams.py": 7,
    "tests/test_grader.py": 8, "tests/test_grading_agreement.py": 8, "tests/test_bench.py": 8,
    "tests/test_ch06_ch07.py": 5, "tests/test_grading_autograder.py": 5,
    "tests/test_torch_free.py": 3, "tests/test_layers.py": 3,
    "tests/test_grader_hardening.py": 30, "tests/test_sandbox_privileges.py": 3,
}
_build = {}


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its class, its module, or (``ONE_UNIT_PER_TEST``)
    itself."""
    path, _, rest = nodeid.partition("::")
    if "::" in rest:  # a method: its class
        return nodeid.rsplit("::", 1)[0]
    return nodeid if path in ONE_UNIT_PER_TEST else path


@functools.cache
def _lesson_seconds() -> dict[str, float]:
    from companion.timing import measured_seconds

    return measured_seconds()


def cost_hint(unit: str) -> float:
    """Rough seconds a unit takes: ``COST_HINTS``, a solved lesson's measured run time, or
    its module's hint (1 s by default)."""
    if unit in COST_HINTS:
        return COST_HINTS[unit]
    if unit.startswith("tests/test_lessons.py::test_solved_lesson"):
        return _lesson_seconds().get(unit.partition("[")[2].rstrip("]"), 20)
    return COST_HINTS.get(unit.partition("::")[0], 1)


def _is_slow(item) -> bool:
    return bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))


def _needs_book(item) -> bool:
    return "built_book" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need the book, a JupyterLab or a browser ``slow``; order the units
    of work longest first, those that need the book last if it still has to be built (stable
    otherwise)."""
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
    _check_expensive_fixtures_stay_in_one_unit(items)
    book_is_fresh = fresh_build_stamp(BUILD_DIR) is not None
    units = {}
    for item in items:
        unit = units.setdefault(work_unit(item.nodeid), [False, 0.0])
        unit[0] |= _needs_book(item) and not book_is_fresh
    for name, unit in units.items():
        unit[1] = -cost_hint(name)
    items.sort(key=lambda item: tuple(units[work_unit(item.nodeid)]))


def _check_expensive_fixtures_stay_in_one_unit(items):
    """A JupyterLab, the book's browser, the PDF and the graded class are each made once per
    worker that runs one of their tests: a test using one of them outside its unit would make
    it twice. Refuse such a collection, naming the units."""
    units = {}
    for item in items:
        for name in set(MADE_ONCE) & set(getattr(item, "fixturenames", ())):
            units.setdefault(name, set()).add(work_unit(item.nodeid))
    spread = {name: sorted(found) for name, found in units.items() if len(found) > 1}
    if spread:
        raise pytest.UsageError(
            "tests that share an expensive fixture must stay in one module or class (one unit "
            f"of work for pytest-xdist), or the fixture is made once per unit: {spread}")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduler with this file's units of work, sent in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the order pytest_collection_modifyitems chose
    return UnitScheduling(config, log)


def _private_temporary_folder():
    """Under xdist, give this worker its own ``TMPDIR`` (inherited by what it starts)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "GATED_MEMORY_TEST_TMPDIR" not in os.environ:
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")[:12]
        folder = Path(tempfile.gettempdir()) / f"gated-memory-tests-{run}-{worker}"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["TMPDIR"] = os.environ["GATED_MEMORY_TEST_TMPDIR"] = str(folder)
        tempfile.tempdir = None


_private_temporary_folder()


def pytest_collection_finish(session):
    """Start the book build now if any selected test needs it and no fresh one exists."""
    if any(_needs_book(item) for item in session.items) and not session.config.option.collectonly:
        _start_build_in_background()


def fresh_build_stamp(build_dir: Path) -> dict | None:
    """The stamp of ``build_dir`` if it is a strict, warning-free build of the current
    sources that executed every lesson afresh; ``None`` otherwise."""
    stamp = read_stamp(build_dir)
    if stamp is None:
        return None
    fresh = (stamp.get("warnings") == 0 and stamp.get("failed") is False
             and stamp.get("nitpicky") is True
             and set(LESSON_NAMES) <= set(stamp.get("executed_afresh") or ())
             and stamp.get("sources") == sources_hash()
             and (build_dir / "html" / "index.html").exists()
             and (build_dir / "jupyter_execute" / "lessons").is_dir())
    return stamp if fresh else None


def _run_id() -> str:
    """Shared by the workers of one ``pytest -n`` run (one process otherwise)."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", f"pid-{os.getpid()}")


def _build_unless_fresh():
    """Build the book into ``_build`` unless a fresh build is there or another worker of this
    run already tried (and failed: its log says why); one process at a time."""
    BUILD_DIR.mkdir(exist_ok=True)
    with FileLock(BUILD_DIR / ".pytest-build.lock"):
        if fresh_build_stamp(BUILD_DIR) is not None:
            return
        attempt = BUILD_DIR / ".pytest-build-run"
        if attempt.exists() and attempt.read_text() == _run_id():
            return
        attempt.write_text(_run_id())
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        command = [str(jupyter_book), "build", str(ROOT), "-n", "-W", "--keep-going", "--all"]
        with open(BUILD_LOG, "w") as log:
            # its own process group: stopping it stops the lesson workers it started too
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                       env=LESSON_ENV, start_new_session=True)
            _build["process"] = process
            process.wait()


def _start_build_in_background():
    if "thread" not in _build:
        _build["thread"] = threading.Thread(target=_build_unless_fresh, daemon=True)
        _build["thread"].start()


def _stop_build(process) -> None:
    """Kill an unfinished build with the lesson workers it spawned (its process group); their
    kernels exit when they see their parent gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def pytest_sessionfinish(session, exitstatus):
    process = _build.get("process")
    if process is not None and process.poll() is None:
        _stop_build(process)
    if os.environ.get("PYTEST_XDIST_WORKER") and "GATED_MEMORY_TEST_TMPDIR" in os.environ:
        shutil.rmtree(os.environ["GATED_MEMORY_TEST_TMPDIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def built_book():
    """The whole book built strictly — nitpicky, warnings as errors, every lesson executed
    afresh — into ``_build``, exactly as the README's build command does.
    Returns ``(build_dir, log)`` where ``build_dir`` holds ``html/`` and ``jupyter_execute/``."""
    _start_build_in_background()
    _build["thread"].join()
    stamp = fresh_build_stamp(BUILD_DIR)
    log = BUILD_LOG.read_text() if BUILD_LOG.exists() else ""
    attempt = BUILD_DIR / ".pytest-build-run"
    built_in_this_run = attempt.exists() and attempt.read_text() == _run_id()
    if stamp is None and not built_in_this_run:
        pytest.fail("_build is not a strict build of the current sources, and this run did not "
                    "build it: did a source change while the tests ran? Run them again.",
                    pytrace=False)
    assert stamp is not None, f"the strict book build failed:\n{log[-6000:]}"
    if "process" not in _build:
        log = (f"reused the strict build in _build: {stamp['warnings']} warnings, "
               f"sources {stamp['sources']}")
    return BUILD_DIR, log


def pytest_addoption(parser):
    parser.addoption(
        "--screenshots", action="store_true",
        help="save screenshots of every lesson, in the book at desktop and phone widths and in "
             "JupyterLab, into _build/screenshots/ for review (off by default: full-page "
             "screenshots took half of the browser tests' time)")


@pytest.fixture(scope="session")
def screenshots(request):
    """The folder that ``--screenshots`` saves screenshots into (``_build/screenshots``), or
    ``None`` without that option."""
    return BUILD_DIR / "screenshots" if request.config.getoption("screenshots") else None


@pytest.fixture(scope="session")
def chromium_path():
    """Debian's Chromium, or a failure that says how to install it (never a skip)."""
    from . import browser_tools as bt

    path = bt.find_chromium()
    if path is None:
        pytest.fail(bt.missing_chromium_message(), pytrace=False)
    return path


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver for the whole session: the book's and JupyterLab's browser tests
    share it (the sync API allows one per thread)."""
    from . import browser_tools as bt

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(bt.PLAYWRIGHT_HINT, pytrace=False)
    with sync_playwright() as playwright:
        yield playwright
