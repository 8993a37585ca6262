"""Shared fixtures: one strict build of the book per test session.

If ``_build`` holds a strict build of exactly the current sources (the README's first command
leaves one; ``book/_ext/build_stamp.py`` stamps it), the tests use it as it is. Otherwise a
build starts in the background as soon as the session knows it needs one, so the unit tests
run on the other core meanwhile.

Tests that use the build (directly or through another fixture) are marked ``slow`` and run
last; ``python -m pytest -m "not slow"`` is the developer's quick subset and builds nothing.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from build_stamp import sources_hash  # noqa: E402

SLOW_FIXTURES = {"built_book", "lab", "playwright_driver"}  # a build, a JupyterLab, a browser
_build = {}


def _needs_book(item) -> bool:
    return bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need the book ``slow`` and move them to the end (stable order)."""
    for item in items:
        if _needs_book(item):
            item.add_marker(pytest.mark.slow)
    items.sort(key=_needs_book)


def pytest_collection_finish(session):
    """Start the book build now if any selected test needs it and no fresh one exists."""
    if any(_needs_book(item) for item in session.items) and not session.config.option.collectonly:
        _reuse_or_start_build()


def fresh_build_stamp(build_dir: Path) -> dict | None:
    """The stamp of ``build_dir`` if it is a strict, warning-free build of the current
    sources with every lesson executed; ``None`` otherwise."""
    try:
        stamp = json.loads((build_dir / "build-stamp.json").read_text())
    except (OSError, ValueError):
        return None
    fresh = (stamp.get("warnings") == 0 and stamp.get("failed") is False
             and stamp.get("nitpicky") is True and stamp.get("execution") == "force"
             and stamp.get("sources") == sources_hash()
             and (build_dir / "html" / "index.html").exists()
             and (build_dir / "jupyter_execute" / "lessons").is_dir())
    return stamp if fresh else None


def _reuse_or_start_build():
    stamp = fresh_build_stamp(ROOT / "_build")
    if stamp is not None:
        _build.update(reused=ROOT / "_build", stamp=stamp)
    else:
        _start_build()


def _start_build():
    out = Path(tempfile.mkdtemp(prefix="gated-memory-book-"))
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [
        str(jupyter_book), "build", str(ROOT), "--path-output", str(out),
        "-n", "-W", "--keep-going", "--all",
    ]
    log = open(out / "build.log", "w+")  # noqa: SIM115 (closed when the build is collected)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    _build.update(out=out, log=log, process=process)


def pytest_sessionfinish(session, exitstatus):
    process = _build.get("process")
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
    if "log" in _build:
        _build["log"].close()
        shutil.rmtree(_build["out"], ignore_errors=True)


@pytest.fixture(scope="session")
def built_book():
    """The whole book built strictly — nitpicky, warnings as errors, every lesson executed
    afresh — into a temporary folder, exactly as the README's build command does.
    Returns ``(build_dir, log)`` where ``build_dir`` holds ``html/`` and ``jupyter_execute/``."""
    if not _build:
        _reuse_or_start_build()
    if "reused" in _build:
        stamp = _build["stamp"]
        return _build["reused"], (f"reused the strict build in _build: {stamp['warnings']} "
                                  f"warnings, sources {stamp['sources']}")
    returncode = _build["process"].wait()
    _build["log"].seek(0)
    log = _build["log"].read()
    assert returncode == 0, f"the strict book build failed:\n{log[-6000:]}"
    return _build["out"] / "_build", log


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
