"""The whole book as one PDF, offline: ``python book/make_pdf.py`` writes
``_build/pdf/gated-memory.pdf``.

Sphinx's single-page HTML builder renders every page of the book into one HTML file, from the
lessons as the HTML build executed them (``_build/jupyter_execute``; the HTML book is built
first when that build is missing or its stamp is not of the current sources), so no lesson
runs twice. Debian's Chromium then loads that page, waits until MathJax has typeset every
formula and every figure has loaded, and prints it to PDF with a document outline (the PDF's
table of contents) and page numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from build_stamp import read_stamp, sources_hash  # noqa: E402

SOURCES = ["_config.yml", "_toc.yml", "references.bib", "book", "lessons"]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
]


def jupyter_book() -> str:
    return str(Path(sys.executable).with_name("jupyter-book"))


def build_is_current(build_dir: Path) -> bool:
    """Whether ``build_dir`` holds a finished build of the sources as they are now (its
    ``build-stamp.json``, written by ``book/_ext/build_stamp.py``). A lesson's file date says
    nothing: a checkout touches an unchanged lesson, and an edit to the companion package
    changes what every lesson prints without touching one."""
    stamp = read_stamp(build_dir)
    return (stamp is not None and stamp.get("failed") is False
            and stamp.get("sources") == sources_hash())


def executed_lessons(build_dir: Path) -> Path:
    """``<build_dir>/jupyter_execute/lessons``, building the HTML book first when that build
    is missing or not of the current sources."""
    if not build_is_current(build_dir):
        subprocess.run([jupyter_book(), "build", str(ROOT), "--path-output",
                        str(build_dir.parent)], check=True, cwd=ROOT)
    return build_dir / "jupyter_execute" / "lessons"


def build_singlehtml(executed: Path, workdir: Path) -> Path:
    """The book as one HTML page, built from a copy of the sources whose lessons are the
    executed ones and whose configuration executes nothing; returns the HTML file."""
    source = workdir / "source"
    source.mkdir()
    for name in SOURCES:
        target = source / name
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns(
                "_build", ".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy(ROOT / name, target)
    for lesson in executed.glob("*.ipynb"):
        shutil.copy(lesson, source / "lessons" / lesson.name)
    config = yaml.safe_load((source / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([jupyter_book(), "build", str(source), "--builder", "singlehtml",
                    "--path-output", str(workdir / "out")], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    site = workdir / "out" / "_build" / "singlehtml"
    page = site / "book" / "intro.html"  # index.html only redirects to the root page
    # sphinx-mathjax-offline points the root page, which lives in book/, at _static/ rather
    # than ../_static/: give it the copy it asks for.
    shutil.copytree(site / "_static", page.parent / "_static", dirs_exist_ok=True)
    return page


def find_chromium() -> str:
    configured = os.environ.get("CHROMIUM")
    for candidate in ([configured] if configured else ["chromium", "chromium-browser"]):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    raise SystemExit("Debian's Chromium is needed to print the book: "
                     "sudo apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)")


PRINT_CSS = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
.bd-sidebar-primary, .bd-sidebar-secondary, .bd-header, .bd-footer, .bd-header-article,
.prev-next-area, .header-article-items, .bd-search, .theme-switch-button,
.headerlink { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
section > h1 { break-before: page; }
/* paper does not scroll: long code lines wrap instead of being cut at the margin */
pre, pre code {
  white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important;
}
"""


def print_pdf(html: Path, output: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    output.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(html.as_uri(), wait_until="load")
            page.wait_for_function("() => window.MathJax && MathJax.startup && "
                                   "MathJax.startup.promise", timeout=60_000)
            page.evaluate("() => MathJax.startup.promise")
            page.evaluate("() => document.querySelectorAll('img[loading=lazy]')"
                          ".forEach(i => i.loading = 'eager')")
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)",
                                   timeout=60_000)
            page.add_style_tag(content=PRINT_CSS)
            page.pdf(path=str(output), format="A4", print_background=True, outline=True,
                     tagged=True, display_header_footer=True,
                     header_template="<span></span>",
                     footer_template='<div style="font-size:8px;width:100%;text-align:center">'
                                     '<span class="pageNumber"></span></div>')
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=ROOT / "_build",
                        help="the HTML build whose executed lessons are reused (default _build)")
    parser.add_argument("--output", type=Path, default=ROOT / "_build/pdf/gated-memory.pdf")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    executed = executed_lessons(args.build_dir)
    with tempfile.TemporaryDirectory(prefix="gated-memory-pdf-") as workdir:
        html = build_singlehtml(executed, Path(workdir))
        print_pdf(html, args.output, chromium)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
