"""Shared fixtures: one strict build of the book per test session."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Build the whole book strictly — nitpicky, warnings as errors, every lesson executed
    afresh — into a temporary folder, exactly as the README's build command does.
    Returns ``(build_dir, log)`` where ``build_dir`` holds ``html/`` and ``jupyter_execute/``."""
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [
        str(jupyter_book), "build", str(ROOT), "--path-output", str(out),
        "-n", "-W", "--keep-going", "--all",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the strict book build failed:\n{log[-6000:]}"
    return out / "_build", log


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
