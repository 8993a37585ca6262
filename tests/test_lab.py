"""The lessons as learners see them: in JupyterLab with jupyterlab-myst (the versions
``requirements.txt`` pins), started on 127.0.0.1 with no token, and driven by Debian's Chromium
through Playwright.

Every lesson opens with no console error, its equations numbered once and as in the book, its
citations readable (author-year links to the references page, never raw keys), its exercises
and figure captions numbered "<chapter>.<n>" as in the book, each exercise one box, each figure's
caption under it, its solutions collapsed and opening on their code, and the notebook not marked
modified. Then the warm-up, with a wrong answer typed into
a stub, is run with Run All from the menu: the last cell runs and the failure is shown.
With ``--screenshots``, screenshots land in ``_build/screenshots/lab/`` for review.

JupyterLab serves a temporary copy of the lessons, its Python version set to this one's (see
``match_this_python``): nothing is written into ``lessons/``.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest
from lesson_forms import citation_labels  # book/_ext/lesson_forms.py, on the path (conftest.py)

from . import browser_tools as bt
from .lesson_tools import LESSONS, ROOT, read

BIB_KEYS = re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "references.bib").read_text(), re.M)
WARM_UP = ROOT / "lessons" / "00_warmup.ipynb"
WRONG_SIGMOID = "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))  # overflows for z = -1000\n"


def markdown(path: Path) -> str:
    return "\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")


def chapter_prefix(path: Path) -> str:
    return re.search(r"enumerator: (\S+)\.%s", markdown(path)).group(1)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """Base URL of a JupyterLab serving a copy of the lessons and the pages they link to."""
    root = tmp_path_factory.mktemp("lab-root")
    for folder in ("lessons", "book"):
        shutil.copytree(ROOT / folder, root / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_generated"))
    shutil.copy(ROOT / "references.bib", root / "references.bib")
    for lesson in (root / "lessons").glob("*.ipynb"):
        match_this_python(lesson)
    log = tmp_path_factory.mktemp("lab-log") / "jupyter-lab.log"
    with bt.jupyter_lab(root, log) as base_url:
        yield base_url


def match_this_python(lesson: Path) -> None:
    """Store this Python's version in the served copy's ``language_info``, as its kernel will
    report it. A lesson keeps the version it was last saved with, and JupyterLab marks a
    notebook modified when its kernel reports another one: on another 3.11.x a learner sees
    that once, which no lesson can avoid. Every other difference is still caught."""
    notebook = read(lesson)
    info = notebook.metadata.get("language_info", {})
    if info.get("version") not in (None, platform.python_version()):
        info["version"] = platform.python_version()
        nbformat.write(notebook, lesson)


@pytest.fixture(scope="session")
def browser(playwright_driver, chromium_path):
    with bt.launch_browser(playwright_driver, chromium_path) as ctx:
        yield ctx


IDLE_KERNEL = (  # the status bar reads "Python 3 (ipykernel) | Idle"
    "() => /\\|\\s*Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')")
MARKDOWN_RENDERED = """count => {  // every Markdown cell holds jupyterlab-myst's rendering
  const cells = document.querySelectorAll('.jp-NotebookPanel .jp-MarkdownCell');
  return cells.length === count && Array.from(cells).every(c => c.querySelector('.myst'));
}"""
CHAPTER_NUMBERS = """prefix => {  // jupyterlab-myst's notebook-wide pass numbered every exercise
  const titles = Array.from(
    document.querySelectorAll('aside.myst-exercise .myst-exercise-title'));
  return titles.length > 0 && titles.every(t => t.innerText.startsWith(`Exercise ${prefix}.`));
}"""


# When a kernel starts, the notebook copies its language info and kernel spec into its
# metadata (NotebookPanel._onKernelChanged); a lesson whose stored metadata differs is then
# marked modified. Wait for both, then for two frames so that the page shows the result.
KERNEL_METADATA_LANDED = """async () => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  await Promise.all([kernel.info, kernel.spec]);
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
}"""


REQUESTS_ANSWERED = """() => {  // the current notebook's kernel awaits no reply
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
  return kernel !== undefined && kernel._futures.size === 0;
}"""


def settle(tab, path: Path) -> None:
    """Wait until the lesson's kernel is idle, every Markdown cell is rendered (one after the
    other, in the background) and jupyterlab-myst's notebook-wide pass is done (exercise
    numbers carry the chapter prefix only after it)."""
    tab.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=60_000)
    tab.wait_for_function(IDLE_KERNEL, timeout=60_000)
    markdown_cells = sum(cell.cell_type == "markdown" for cell in read(path).cells)
    tab.wait_for_function(MARKDOWN_RENDERED, arg=markdown_cells, timeout=30_000)
    tab.wait_for_function(CHAPTER_NUMBERS, arg=chapter_prefix(path), timeout=30_000)
    tab.evaluate(KERNEL_METADATA_LANDED)


@pytest.fixture(scope="session")
def lab_tab(browser, lab):
    """One tab with JupyterLab loaded and no document open, and its log."""
    tab = browser.new_page()
    log = bt.record(tab, f"{lab}lab")
    tab.goto(f"{lab}lab?reset", wait_until="load")
    tab.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    tab.evaluate("async () => { await window.jupyterapp.restored; }")
    yield tab, log
    tab.close()


def open_in_lab(tab, path: Path) -> None:
    """Open the lesson in the running JupyterLab as a double click in the file browser does
    (``docmanager:open``), and let it settle."""
    tab.evaluate("async path => { await window.jupyterapp.commands.execute("
                 "'docmanager:open', {path}); }", f"lessons/{path.name}")
    settle(tab, path)


def close_and_shut_down(tab) -> None:
    """Close the open notebook and shut its kernel down (File > Close and Shut Down Notebook,
    without the confirmation dialog)."""
    tab.evaluate("""async () => {
        const panel = window.jupyterapp.shell.currentWidget;
        await panel.sessionContext.shutdown();
        panel.dispose();
    }""")
    tab.wait_for_function("() => !document.querySelector('.jp-NotebookPanel')")


LAB_FACTS = r"""
() => {
  // jupyterlab-myst renders a Markdown cell into a .myst widget (JupyterLab's own
  // renderer, .jp-RenderedMarkdown, is not used)
  const cells = Array.from(document.querySelectorAll('.jp-MarkdownCell .myst'));
  const text = cells.map(c => c.innerText).join('\n');
  const displays = Array.from(document.querySelectorAll('.jp-MarkdownCell .katex-display'));
  const equations = displays.map(d => {
    const box = d.closest('div.my-5') || d.parentElement;
    const copy = box.cloneNode(true);
    copy.querySelectorAll('.katex-display').forEach(k => k.remove());
    return {tags: Array.from(d.querySelectorAll('.katex-html .tag')).map(t => t.innerText.trim()),
            extra: copy.innerText.trim()};
  });
  return {
    text,
    equations,
    // jupyterlab-myst marks what it could not render (bad math, an unknown citation, role or
    // directive) with a warning or error icon in yellow or red, the reason in a title
    mystProblems: Array.from(document.querySelectorAll(
        '.jp-MarkdownCell .myst .text-yellow-600, .jp-MarkdownCell .myst .text-red-500'))
      .map(e => (e.closest('[title]')?.getAttribute('title') || e.innerText).trim()),
    exercises: Array.from(document.querySelectorAll('aside.myst-exercise .myst-exercise-title'))
                    .map(t => t.innerText.replace(/\s+/g, ' ').trim()),
    solutions: Array.from(document.querySelectorAll('details.myst-exercise'))
                    .map(d => ({open: d.open,
                                title: d.querySelector('summary').innerText
                                        .replace(/\s+/g, ' ').trim()})),
    citationLinks: Array.from(document.querySelectorAll('.jp-MarkdownCell a'))
                        .filter(a => a.href.includes('references.md'))
                        .map(a => a.innerText.trim()),
    figureCaptions: Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'))
      .map((cell, i, cells) => ({cell, before: cells[i - 1]}))
      .filter(({cell}) => cell.classList.contains('jp-MarkdownCell')
              && /^Fig\.\s/.test((cell.querySelector('.myst')?.innerText || '').trim()))
      .map(({cell, before}) => {
        const shown = cell.querySelector('.myst');
        return {text: shown.innerText.trim().replace(/\s+/g, ' '),
                bold: shown.querySelector('strong')?.innerText.trim() || '',
                afterCode: before !== undefined && before.classList.contains('jp-CodeCell')};
      }),
    dirty: document.querySelectorAll('.jp-mod-dirty').length,
  };
}
"""


@pytest.fixture(scope="session")
def lab_screenshots(screenshots):
    """The folder for ``--screenshots`` of JupyterLab (emptied first), or ``None``."""
    if screenshots is None:
        return None
    folder = screenshots / "lab"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="session")
def lessons_seen(lab_tab, lab_screenshots):
    """Each lesson opened once, one after the other in the same JupyterLab, as a learner
    opens them from the file browser: ``{path: (log, facts)}``, filled on demand. Opening
    each in a new tab would load JupyterLab's code each time: a third more time for the same
    checks."""
    tab, tab_log = lab_tab
    seen = {}

    def visit(path: Path):
        if path not in seen:
            mark = tab_log.mark()
            open_in_lab(tab, path)
            try:
                facts = tab.evaluate(LAB_FACTS)
                bt.save_screenshot(tab, lab_screenshots, f"{path.stem}.png")
                if facts["citationLinks"]:
                    facts["citationOpens"] = follow_first_citation(tab)
                facts["solutionsOpened"] = open_every_solution(tab, path, lab_screenshots)
            finally:
                close_and_shut_down(tab)
            seen[path] = (tab_log.since(mark), facts)
        return seen[path]

    return visit


def open_every_solution(tab, path: Path, screenshots: Path | None) -> list[dict]:
    """Click each solution open; what it shows. The first one is screenshotted open."""
    opened = []
    solutions = tab.locator("details.myst-exercise")
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        solution.locator("summary").scroll_into_view_if_needed()
        solution.locator("summary").click()
        code = solution.locator("pre, code").first
        code.wait_for(state="visible", timeout=5000)
        if index == 0:
            bt.save_screenshot(tab, screenshots, f"{path.stem}-solution.png")
        opened.append({"open": solution.evaluate("d => d.open"),
                       "code": solution.locator("pre").first.inner_text()})
    return opened


def follow_first_citation(tab) -> dict:
    """Click the lesson's first citation link, as a learner does; what JupyterLab opens (its
    path, whether as text in the file editor, and the whole text), closed again after."""
    notebook = tab.evaluate("() => window.jupyterapp.shell.currentWidget.id")
    link = tab.locator(".jp-MarkdownCell a[href*='references.md']").first
    link.scroll_into_view_if_needed()
    link.click()
    tab.wait_for_function("id => window.jupyterapp.shell.currentWidget?.id !== id", arg=notebook,
                          timeout=30_000)
    tab.wait_for_function("() => window.jupyterapp.shell.currentWidget.context?.isReady")
    return tab.evaluate("""async notebook => {
        const widget = window.jupyterapp.shell.currentWidget;
        const opened = {path: widget.context.path,
                        asText: widget.node.querySelector('.jp-FileEditor') !== null,
                        text: widget.context.model.toString()};
        widget.dispose();
        window.jupyterapp.shell.activateById(notebook);
        return opened;
    }""", notebook)
    # Coming back to the notebook makes JupyterLab's debugger ask its kernel for debugInfo;
    # shutting the kernel down before the reply would cancel that request (an uncaught error).
    tab.wait_for_function(REQUESTS_ANSWERED, timeout=30_000)


@pytest.mark.slow  # `jupyter labextension list` takes 5 s: kept out of the quick subset
def test_jupyterlab_myst_declares_itself_compatible_with_jupyterlab():
    jupyter = Path(sys.executable).with_name("jupyter")
    listing = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True,
                             text=True, check=True)
    report = listing.stdout + listing.stderr
    assert re.search(r"jupyterlab-myst v\S+ .*enabled.*OK", report), report
    assert "not compatible" not in report and "Conflicting" not in report, report


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_opens_clean_with_no_console_error(lessons_seen, path):
    log, facts = lessons_seen(path)
    assert not log.problems(), f"{path.name}:\n  " + "\n  ".join(log.problems())
    title = re.search(r"^# (.+)$", markdown(path), re.M).group(1).strip()
    assert title in facts["text"], f"{path.name}: its rendered Markdown was not read"
    assert facts["dirty"] == 0, f"{path.name} is marked modified as soon as it is opened"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_equations_are_numbered_once_as_in_the_book(lessons_seen, path):
    _, facts = lessons_seen(path)
    assert not facts["mystProblems"], f"{path.name}: not rendered: {facts['mystProblems']}"
    source_tags = [f"({tag})" for tag in re.findall(r"\\tag\{([^}]*)\}", markdown(path))]
    shown = [tag for equation in facts["equations"] for tag in equation["tags"]]
    assert shown == source_tags
    extra = [eq["extra"] for eq in facts["equations"] if eq["extra"]]
    assert not extra, f"{path.name}: a second equation number next to the book's: {extra}"
    for raw in ("$$", "\\begin{", "\\tag{"):
        assert raw not in facts["text"], f"{path.name}: raw TeX {raw!r} in the rendered text"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_citations_read_as_author_year_links_not_keys(lessons_seen, path):
    _, facts = lessons_seen(path)
    keys = [key for key in BIB_KEYS if key in facts["text"]]
    assert not keys, f"{path.name}: raw citation keys shown: {keys}"
    assert "{cite" not in facts["text"]
    if "#cite:" in markdown(path):
        assert facts["citationLinks"], f"{path.name}: no citation links to the references"
        for text in facts["citationLinks"]:
            assert re.search(r"\b(1[89]|20)\d\d\b", text), f"{path.name}: citation {text!r}"


@pytest.mark.parametrize("path", [p for p in LESSONS if "#cite:" in markdown(p)],
                         ids=lambda p: p.stem)
def test_a_clicked_citation_opens_the_references_with_every_work_readable(lessons_seen, path):
    """JupyterLab has no bibliography: a citation link opens ``book/references.md`` as text,
    whose plain-text list (written by ``book/_ext/lesson_forms.py``) names every work in full."""
    _, facts = lessons_seen(path)
    opened = facts["citationOpens"]
    assert opened["path"] == "book/references.md" and opened["asText"], opened["path"]
    listed = re.sub(r"\s*\n%\s*", " ", opened["text"])
    cited = {key for keys in re.findall(r"#cite:[pt]:([\w,]+)\)", markdown(path))
             for key in keys.split(",")}
    labels = citation_labels()
    for key in sorted(cited):
        who, year = labels[key]
        assert f"[{who}, {year}] " in listed, f"{path.name}: {key} not listed in full"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_exercises_are_one_box_each_numbered_as_in_the_book(lessons_seen, path):
    _, facts = lessons_seen(path)
    prefix = chapter_prefix(path)
    count = len(re.findall(r"^`{3,}\{exercise\}", markdown(path), re.M))
    assert count > 0
    numbers = [re.match(r"Exercise (\S+)", title).group(1) for title in facts["exercises"]]
    assert numbers == [f"{prefix}.{n}" for n in range(1, count + 1)], facts["exercises"]
    assert "Start of Exercise" not in facts["text"] and "End of Exercise" not in facts["text"]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_each_figure_has_its_caption_numbered_as_in_the_book(lessons_seen, path):
    """jupyterlab-myst shows no caption for a figure drawn by code (its metadata caption is the
    book's only): the caption is the Markdown cell right under the figure's code cell, opening
    with the book's number in bold, "Fig. <chapter>.<n>"."""
    _, facts = lessons_seen(path)
    figures = sum("figure" in cell.metadata.get("mystnb", {}) for cell in read(path).cells)
    captions = facts["figureCaptions"]
    assert [c["bold"] for c in captions] == [
        f"Fig. {chapter_prefix(path)}.{n}" for n in range(1, figures + 1)], captions
    assert all(c["afterCode"] for c in captions), captions
    assert all(len(c["text"]) > 60 for c in captions), captions


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_solutions_are_collapsed_and_open_on_their_code(lessons_seen, path):
    _, facts = lessons_seen(path)
    prefix = chapter_prefix(path)
    assert facts["solutions"], f"{path.name} has no solution boxes"
    assert [s["title"] for s in facts["solutions"]] == [
        f"Solution to Exercise {prefix}.{n}" for n in range(1, len(facts["solutions"]) + 1)]
    assert not any(s["open"] for s in facts["solutions"]), "a solution is open on load"
    for opened in facts["solutionsOpened"]:
        assert opened["open"]
        assert opened["code"].startswith("def "), f"an opened solution shows {opened['code']!r}"


def test_run_all_with_a_wrong_answer_reaches_the_last_cell_and_shows_the_failure(
        lab_tab, lab_screenshots):
    """The warm-up, opened in the running JupyterLab, with a sigmoid that overflows typed into
    its stub, run with Run ▸ Run All Cells: the check reports the failure and the lesson runs
    to its last cell."""
    tab, tab_log = lab_tab
    mark = tab_log.mark()
    open_in_lab(tab, WARM_UP)
    try:
        stub = tab.locator(".jp-CodeCell", has_text="raise NotImplementedError").filter(
            has_text="def sigmoid(z):").first
        stub.locator(".cm-content").click()
        tab.keyboard.press("Control+A")
        tab.keyboard.insert_text(WRONG_SIGMOID)
        tab.keyboard.press("Escape")
        tab.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        tab.locator(".lm-Menu-item:visible", has_text=re.compile(r"^Run All Cells")).click()
        code_cells = tab.locator(".jp-CodeCell")
        last = code_cells.nth(code_cells.count() - 1)
        last.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(
            timeout=120_000)
        check = tab.locator(".jp-CodeCell", has_text='check("sigmoid", sigmoid)').first
        check_output = check.locator(".jp-OutputArea").inner_text()
        last_output = last.locator(".jp-OutputArea").inner_text()
        check.scroll_into_view_if_needed()
    finally:
        bt.save_screenshot(tab, lab_screenshots, "00_warmup-wrong-answer.png")
        close_and_shut_down(tab)  # no kernel outlives its test; the edit is not saved
    assert "sigmoid" in check_output and re.search(r"fail", check_output, re.I), check_output
    assert "max sigma'(z) on the grid" in last_output, last_output
    page_errors = tab_log.since(mark).page_errors
    assert not page_errors, page_errors


def test_a_lesson_opens_from_its_url(browser, lab):
    """``jupyter lab lessons/00_warmup.ipynb``, or a bookmarked link, opens a lesson from its
    URL in a new JupyterLab page (here in a workspace of its own, so that the tab above is left
    alone): it opens that lesson, settles as from the file browser, logs no error and is not
    marked modified."""
    path = LESSONS[0]
    tab = browser.new_page()
    log = bt.record(tab, f"{lab}lab")
    try:
        tab.goto(f"{lab}lab/workspaces/from-url/tree/lessons/{path.name}?reset",
                 wait_until="load")
        tab.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
        tab.evaluate("async () => { await window.jupyterapp.restored; }")
        settle(tab, path)
        opened = tab.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
        facts = tab.evaluate(LAB_FACTS)
        # A fresh page's debugger asks the new kernel for its debug info; shutting the kernel
        # down before the reply would cancel that request (an uncaught error, not the lesson's).
        tab.wait_for_function(REQUESTS_ANSWERED, timeout=30_000)
        close_and_shut_down(tab)
    finally:
        tab.close()
    assert opened == f"lessons/{path.name}"
    assert not log.problems(), "\n  ".join(log.problems())
    title = re.search(r"^# (.+)$", markdown(path), re.M).group(1).strip()
    assert title in facts["text"] and facts["dirty"] == 0


BROKEN_MARKDOWN = (
    "# Broken on purpose\n\nInline $\\frac{1}{$ math, then a display:\n\n"
    "$$ x = \\nosuchmacro{y} \\tag{9.1} $$\n\nAnd a citation {cite:p}`nosuchkey2099`.")


def test_what_jupyterlab_myst_cannot_render_is_caught(lab_tab):
    """The checks above read what a learner sees: on a notebook with broken math and an unknown
    citation key, saved into the running JupyterLab, they find each problem."""
    tab, _ = lab_tab
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(BROKEN_MARKDOWN)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                       "language": "python"}
    path = "lessons/zz_broken_on_purpose.ipynb"
    tab.evaluate("""async ([path, content]) => {
        await window.jupyterapp.serviceManager.contents.save(
            path, {type: 'notebook', format: 'json', content});
        await window.jupyterapp.commands.execute('docmanager:open', {path});
    }""", [path, json.loads(nbformat.writes(notebook))])
    try:
        tab.wait_for_function(MARKDOWN_RENDERED, arg=1, timeout=30_000)
        facts = tab.evaluate(LAB_FACTS)
        tab.wait_for_function(IDLE_KERNEL, timeout=60_000)  # a starting kernel outlives a close
    finally:
        close_and_shut_down(tab)
        tab.evaluate("path => window.jupyterapp.serviceManager.contents.delete(path)", path)
    problems = " | ".join(facts["mystProblems"])
    assert "\\frac{1}{" in problems, problems  # the inline math's error
    assert "nosuchmacro" in problems, problems  # the display's
    assert "Citation Not Found" in problems, problems
    assert "\\tag{" in facts["text"]  # the raw TeX check sees the broken display


def test_no_kernel_outlives_its_lesson(lessons_seen, lab):
    """Each lesson is closed with its kernel shut down, as File > Close and Shut Down does:
    nothing is left running on the server once every lesson has been seen."""
    for path in LESSONS:
        lessons_seen(path)
    with urllib.request.urlopen(f"{lab}api/kernels", timeout=10) as response:
        kernels = json.load(response)
    assert kernels == [], f"kernels still running: {kernels}"


def test_one_tab_log_is_split_per_lesson():
    """The lessons share a tab: each is judged only on what was logged while it was open."""
    log = bt.PageLog("http://127.0.0.1:1/lab")
    log.console_errors.append("from the lesson before")
    mark = log.mark()
    log.page_errors.append("TypeError: boom")
    log.requests.append("https://cdn.example.org/x.js")
    part = log.since(mark)
    assert part.console_errors == [] and part.page_errors == ["TypeError: boom"]
    assert part.problems() == ["uncaught exception: TypeError: boom",
                               "request leaves the machine: https://cdn.example.org/x.js"]
