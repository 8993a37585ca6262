"""Helpers of the browser tests: find Debian's Chromium, serve the built site (or run JupyterLab)
on 127.0.0.1, and load a page while recording everything that can go wrong on it (console errors,
page errors, failed requests, requests that leave the machine)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

INSTALL_HINT = (
    "The browser tests drive Debian's Chromium in headless mode, and it is not installed.\n"
    "Install it with\n\n"
    "    sudo apt-get update && sudo apt-get install -y chromium chromium-driver\n\n"
    "(CI's .ci/run does this), or point the CHROMIUM environment variable at a Chromium or "
    "Chrome binary. Then rerun: python -m pytest tests/test_browser.py"
)
PLAYWRIGHT_HINT = (
    "The browser tests need the Playwright Python package (pinned in requirements.txt): "
    "python -m pip install -r requirements.txt. Do NOT run `playwright install`: the tests "
    "use Debian's Chromium, not a downloaded browser."
)

# Offline and quiet: without the background-networking flags Chromium calls Google hosts
# (updates, safe browsing...), which fail on a closed network and pollute the request logs.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

LOCAL_HOSTS = {"127.0.0.1"}


def missing_chromium_message() -> str:
    configured = os.environ.get("CHROMIUM")
    if configured:
        return f"CHROMIUM={configured} is not a Chromium binary.\n\n" + INSTALL_HINT
    return INSTALL_HINT


def find_chromium() -> str | None:
    """The Chromium binary: $CHROMIUM, else chromium / chromium-browser on the PATH."""
    candidate = os.environ.get("CHROMIUM")
    if candidate:
        return shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".ipynb": "application/x-ipynb+json",
        ".js": "text/javascript",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
    }

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextmanager
def serve(directory: Path):
    """Serve ``directory`` on http://127.0.0.1:<free port>/ from a thread; yields the base URL
    (ending with a slash)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


DESKTOP = {"width": 1280, "height": 900}  # every new tab's viewport


def save_screenshot(tab, folder: Path | None, name: str, *, full_page: bool = False) -> None:
    """With ``--screenshots`` (``folder`` is the conftest's ``screenshots`` folder or a folder
    in it; ``None`` without the option), save ``tab`` as ``folder/name``: PNG, or JPEG at
    quality 75 for a ``.jpg`` name (half PNG's encoding time on a long page)."""
    if folder is None:
        return
    shot = folder / name
    jpeg = {"type": "jpeg", "quality": 75} if shot.suffix == ".jpg" else {}
    tab.screenshot(path=str(shot), full_page=full_page, **jpeg)
    assert shot.stat().st_size > 0


@contextmanager
def launch_browser(playwright, executable: str):
    """A headless Chromium with a fresh profile (user data dir) that is removed afterwards."""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=executable,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=DESKTOP,
        accept_downloads=True,
        service_workers="block",
    )
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class PageLog:
    """What happened while a page loaded."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = [
            f"console error: {text}"
            for text in self.console_errors
            if not _is_favicon_probe(text)
        ]
        found += [f"uncaught exception: {text}" for text in self.page_errors]
        found += [
            f"failed request: {text}"
            for text in self.failed_requests
            if not _is_favicon_probe(text)
        ]
        found += [
            f"request leaves the machine: {url}" for url in self.requests if not is_local(url)
        ]
        return found

    def mark(self) -> tuple[int, ...]:
        """Where each list ends now; :meth:`since` gives what was logged after."""
        return tuple(len(getattr(self, name)) for name in _LOGGED)

    def since(self, mark: tuple[int, ...]) -> PageLog:
        """A log of what happened after ``mark`` (one tab, several things done in turn)."""
        return PageLog(self.url, *(getattr(self, name)[start:]
                                   for name, start in zip(_LOGGED, mark, strict=True)))


_LOGGED = ("console_errors", "page_errors", "requests", "failed_requests")


def _is_favicon_probe(text: str) -> bool:
    """Chromium asks every origin for /favicon.ico on its own; the book declares no icon, so
    that probe 404s. It is the browser's request, not the page's (no page links to it)."""
    return bool(re.search(r"https?://127\.0\.0\.1:\d+/favicon\.ico\b", text))


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS


def record(page, url: str) -> PageLog:
    """Attach listeners to ``page`` that fill a :class:`PageLog`."""
    log = PageLog(url)

    def on_console(message):
        if message.type == "error":
            location = message.location or {}
            log.console_errors.append(f"{message.text} ({location.get('url', '?')})")

    def on_response(response):
        if response.status >= 400:
            log.failed_requests.append(f"{response.url} -> HTTP {response.status}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("request", lambda request: log.requests.append(request.url))
    page.on(
        "requestfailed",
        lambda request: log.failed_requests.append(f"{request.url} -> {request.failure}"),
    )
    page.on("response", on_response)
    return log


def wait_for_mathjax(page, timeout_ms: int = 30_000) -> bool:
    """Wait until MathJax has typeset the page; False when the page does not load MathJax."""
    has_mathjax = page.evaluate("() => typeof window.MathJax !== 'undefined'")
    if not has_mathjax:
        return False
    page.wait_for_function(
        "() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise",
        timeout=timeout_ms,
    )
    page.evaluate("() => window.MathJax.startup.promise")
    return True


def wait_for_images(page, timeout_ms: int = 15_000) -> None:
    """Make lazy images load and wait until every image finished (loaded or failed)."""
    page.evaluate(
        "() => document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')"
    )
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=timeout_ms
    )


# ---------------------------------------------------------------------------------------------
# JupyterLab, as a learner starts it (tests/test_lab.py)

# User settings for the test's JupyterLab: no news or update check (the pop-up would cover the
# notebook and ask the network), no autosave (Run All must not write into the served copy
# behind the test's back), and every cell rendered (no windowing) so the page can be inspected.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def jupyter_lab(root_dir: Path, log_path: Path, timeout_s: float = 90):
    """``jupyter lab`` serving ``root_dir`` on 127.0.0.1 at a free port, with no token, no
    browser and a throw-away settings, workspace and runtime folder; yields the base URL (ending
    with a slash) and stops the server afterwards. The page exposes the application as
    ``window.jupyterapp`` (as JupyterLab's own UI tests do), so that a test can run its
    commands: open a notebook as the file browser does, close it and shut its kernel down."""
    state = Path(tempfile.mkdtemp(prefix="jupyterlab-test-"))
    for name, values in LAB_SETTINGS.items():
        path = state / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
    }
    port = _free_port()
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.port_retries=0", "--LabApp.news_url=",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers and CI runners often run as root
    base_url = f"http://127.0.0.1:{port}/"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited; its log is {log_path}")
                try:
                    with urllib.request.urlopen(base_url + "api/status", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"jupyter lab did not start; log: {log_path}") from None
                    time.sleep(0.5)
            yield base_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            shutil.rmtree(state, ignore_errors=True)
