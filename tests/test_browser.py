"""The rendered book as its readers see it: the strictly built site (the ``built_book``
fixture), served on 127.0.0.1 and driven by a real headless Chromium (Debian's ``chromium``
package, through Playwright), offline.

Every page loads with no console error, no failed request and no request leaving the machine;
every formula is typeset; every image loads and has a real alt text; every internal link and
cross-reference resolves; solutions start collapsed and open on click; search finds the pages
it should; the download button serves the lesson; lesson pages fit a phone's width. With
``--screenshots``, every lesson page is also saved at desktop and phone widths into
``_build/screenshots/`` for review.

Chromium missing is a failure with the command that installs it, never a skip.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import nbformat
import pytest

from . import browser_tools as bt
from .lesson_tools import LESSONS, ROOT, toc_files

TOC_PAGES = sorted(toc_files())
SITE_PAGES = [*TOC_PAGES, "genindex", "search"]
PHONE = {"width": 390, "height": 844}
LSTM_CHAPTER = ROOT / "lessons" / "04_lstm.ipynb"
META_REFRESH = re.compile(r'<meta http-equiv="Refresh" content="\d+; url=([^"]+)"', re.I)
SOLUTION_DIRECTIVE = re.compile(r"(?m)^(?:`{3,}|:{3,})\{solution\}")


# ---------------------------------------------------------------------------------------------
# Fixtures: one server, one browser, each page loaded once.


@pytest.fixture(scope="session")
def site(built_book):
    """``(html_dir, base_url)`` of the built book served over http on 127.0.0.1."""
    html = built_book[0] / "html"
    with bt.serve(html) as base_url:
        yield html, base_url


@pytest.fixture(scope="session")
def browser(playwright_driver, chromium_path):
    with bt.launch_browser(playwright_driver, chromium_path) as ctx:
        yield ctx


# Facts about a loaded page, computed in the page once MathJax and the images are done.
PAGE_FACTS = r"""
() => {
  const DELIMITERS = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/;
  const mathElements = Array.from(document.querySelectorAll('.math'));
  const rawInMath = mathElements.filter(element => {
    const copy = element.cloneNode(true);
    copy.querySelectorAll('mjx-container').forEach(c => c.remove());
    return DELIMITERS.test(copy.textContent);
  }).map(e => e.textContent.trim().slice(0, 120));
  const rawInText = [];
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest(skip)) continue;
    if (DELIMITERS.test(node.textContent)) rawInText.push(node.textContent.trim().slice(0, 120));
  }
  return {
    title: document.title,
    mathElements: mathElements.length,
    untypeset: mathElements.filter(e => !e.querySelector('mjx-container'))
                            .map(e => e.textContent.trim().slice(0, 120)),
    containers: document.querySelectorAll('mjx-container').length,
    mathErrors: Array.from(document.querySelectorAll('mjx-merror'))
                     .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 200)),
    // MathJax's noundefined extension draws an unknown macro as red text, not as an error;
    // only the assistive MathML beside each formula holds that text (CHTML draws it in CSS).
    mathml: document.querySelectorAll('mjx-container mjx-assistive-mml').length,
    undefinedMacros: Array.from(document.querySelectorAll('mjx-assistive-mml mtext[mathcolor=red]'))
                          .map(e => e.textContent).filter(text => text.startsWith('\\')),
    rawInMath,
    rawInText,
    images: Array.from(document.images).map(i => ({
      src: i.currentSrc || i.src, alt: i.getAttribute('alt'), naturalWidth: i.naturalWidth})),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => ({
      href: a.href, raw: a.getAttribute('href'), text: a.textContent.trim().slice(0, 60)})),
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id)
           .concat(Array.from(document.querySelectorAll('a[name]')).map(a => a.name)),
  };
}
"""


class Site:
    """Loads each page of the served book once, on demand, and remembers what it saw."""

    def __init__(self, html: Path, base_url: str, context, screenshots: Path | None):
        self.html, self.base_url, self.context = html, base_url, context
        self.screenshots = screenshots  # the folder for --screenshots, or None
        self._visits: dict[str, tuple[bt.PageLog, dict]] = {}

    def url(self, page: str) -> str:
        return urljoin(self.base_url, page)

    def visit(self, page: str) -> tuple[bt.PageLog, dict]:
        """``page`` is a path relative to the site root, e.g. ``lessons/00_warmup.html``."""
        if page not in self._visits:
            tab = self.context.new_page()
            log = bt.record(tab, self.url(page))
            try:
                response = tab.goto(self.url(page), wait_until="load")
                if response is None or not response.ok:
                    status = response.status if response else "no response"
                    log.failed_requests.append(f"{self.url(page)} -> {status}")
                redirect = META_REFRESH.search((self.html / page).read_text(encoding="utf-8"))
                if redirect:  # index.html: wait until the browser has followed it
                    tab.wait_for_url(urljoin(self.url(page), redirect.group(1)), timeout=10_000)
                    tab.wait_for_load_state("load")
                bt.wait_for_mathjax(tab)
                bt.wait_for_images(tab)
                facts = tab.evaluate(PAGE_FACTS)
                if page.startswith("lessons/"):  # then, in the same tab:
                    bt.save_screenshot(tab, self.screenshots, f"{Path(page).stem}-desktop.jpg",
                                       full_page=True)
                    facts["solutionClicks"] = attempt(click_every_solution, tab)
                    facts["download"] = attempt(download_with_the_button, tab)
            finally:
                tab.close()
            self._visits[page] = (log, facts)
        return self._visits[page]

    def relative(self, url: str) -> str | None:
        """The site-relative path of a same-site URL (None for another site)."""
        if not url.startswith(self.base_url):
            return None
        path = unquote(urlsplit(url).path)[len(urlsplit(self.base_url).path):]
        return path + "index.html" if path.endswith("/") or not path else path


def lesson_page(book_site: Site, lesson: Path) -> str:
    """The site-relative page of a lesson; fails at once when the build has none."""
    page = f"lessons/{lesson.stem}.html"
    assert (book_site.html / page).is_file(), (
        f"lessons/{lesson.name} has no page in the built book: add it to _toc.yml"
    )
    return page


@pytest.fixture(scope="session")
def book_site(browser, site, screenshots):  # the browser first: no Chromium fails before the build
    html, base_url = site
    if screenshots:
        screenshots.mkdir(parents=True, exist_ok=True)
        for old in [*screenshots.glob("*.png"), *screenshots.glob("*.jpg")]:
            old.unlink()
    return Site(html, base_url, browser, screenshots)


# ---------------------------------------------------------------------------------------------
# Every page.


def test_the_site_is_exactly_the_pages_tested(site):
    html, _ = site
    built = {
        str(p.relative_to(html).with_suffix(""))
        for p in html.rglob("*.html")
        if p.relative_to(html).parts[0] not in ("_static", "_sources")
    }
    assert built == {*SITE_PAGES, "index"}


@pytest.mark.parametrize("page", [*SITE_PAGES, "index"])
def test_page_loads_with_no_console_error_and_no_failed_or_remote_request(book_site, page):
    log, facts = book_site.visit(f"{page}.html")
    assert facts["title"], f"{page}: the page has no title (did it load?)"
    problems = log.problems()
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", SITE_PAGES)
def test_every_formula_is_typeset(book_site, site, page):
    html, _ = site
    _, facts = book_site.visit(f"{page}.html")
    source = (html / f"{page}.html").read_text(encoding="utf-8")
    has_math = bool(re.search(r'class="math[ "]', source))
    assert facts["mathElements"] == 0 or has_math
    if has_math:
        assert facts["containers"] > 0, f"{page}: MathJax typeset nothing"
    assert not facts["untypeset"], f"{page}: formulas left untypeset: {facts['untypeset']}"
    assert not facts["mathErrors"], f"{page}: MathJax errors: {facts['mathErrors']}"
    assert facts["mathml"] == facts["containers"], (
        f"{page}: {facts['containers']} formulas but {facts['mathml']} assistive MathML copies: "
        "the check for undefined macros reads those"
    )
    assert not facts["undefinedMacros"], f"{page}: undefined macros: {facts['undefinedMacros']}"
    assert not facts["rawInMath"], f"{page}: raw TeX left in formulas: {facts['rawInMath']}"
    assert not facts["rawInText"], f"{page}: raw TeX in the text: {facts['rawInText']}"


@pytest.mark.parametrize("page", SITE_PAGES)
def test_every_image_loads_and_has_a_real_alt_text(book_site, page):
    _, facts = book_site.visit(f"{page}.html")
    problems = []
    for image in facts["images"]:
        name = image["src"].rsplit("/", 1)[-1]
        if image["naturalWidth"] == 0:
            problems.append(f"{name}: did not load")
        alt = (image["alt"] or "").strip()
        if not alt:
            problems.append(f"{name}: no alt text")
        elif re.fullmatch(r"\S+\.(png|jpe?g|svg|gif|webp)", alt, re.I):
            problems.append(f"{name}: the alt text is a file name ({alt}), not a description")
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", SITE_PAGES)
def test_every_internal_link_and_cross_reference_resolves(book_site, site, page):
    html, _ = site
    _, facts = book_site.visit(f"{page}.html")
    problems = []
    for link in facts["links"]:
        if link["raw"] in ("#", "") or not link["href"].startswith(("http:", "https:")):
            continue  # "#" buttons, mailto:, javascript:
        if link["raw"].endswith("pdf/gated-memory.pdf"):
            continue  # written beside the site by book/make_pdf.py; tests/test_pdf.py follows it
        target = book_site.relative(link["href"])
        if target is None:
            continue  # another site: not followed offline
        where = f"link {link['raw']!r} ({link['text']!r})"
        if not (html / target).is_file():
            problems.append(f"{where}: {target} does not exist")
            continue
        fragment = unquote(urlsplit(link["href"]).fragment)
        if fragment and target.endswith(".html"):
            _, target_facts = book_site.visit(target)
            if fragment not in target_facts["ids"]:
                problems.append(f"{where}: no id {fragment!r} on {target}")
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------------------------
# Exercise solutions.


def attempt(interaction, tab) -> dict:
    """What ``interaction(tab)`` saw, or the error that stopped it (for its test to report)."""
    try:
        return interaction(tab)
    except Exception as error:  # noqa: BLE001 (reported by the test that reads it)
        return {"error": f"{type(error).__name__}: {error}"}


def click_every_solution(tab) -> dict:
    """Each solution's state on load, after a click on its button, and after a second one."""
    seen = []
    solutions = tab.locator("div.solution.dropdown")
    for index in range(solutions.count()):
        solution = solutions.nth(index)
        title = solution.locator(".admonition-title")
        body = solution.locator(":scope > :not(.admonition-title)")
        button = solution.locator("button.toggle-button")
        button.wait_for(state="attached")
        state = {"name": title.inner_text().strip().splitlines()[0], "parts": body.count(),
                 "visible_on_load": [body.nth(i).is_visible() for i in range(body.count())],
                 "expanded_on_load": button.get_attribute("aria-expanded")}
        button.click()
        body.first.wait_for(state="visible", timeout=5000)
        state["visible_when_open"] = [body.nth(i).is_visible() for i in range(body.count())]
        state["code_visible"] = solution.locator("pre").first.is_visible()
        button.click()
        body.first.wait_for(state="hidden", timeout=5000)
        seen.append(state)
    return {"solutions": seen}


def download_with_the_button(tab) -> dict:
    """The download menu's ``.ipynb`` link, and what the server sends for it."""
    menu = tab.locator(".dropdown-download-buttons")
    menu.locator("button").first.click(timeout=10_000)
    link = menu.locator("a.dropdown-item", has_text=".ipynb")
    link.wait_for(state="visible", timeout=5000)
    href = link.evaluate("a => a.href")
    served = tab.evaluate(
        """async url => {
             const r = await fetch(url);
             return {status: r.status, text: await r.text()};
           }""",
        href,
    )
    return {"href": href, **served}


def solutions_written(lesson: Path) -> int:
    """How many ``{solution}`` directives the lesson's Markdown cells hold."""
    cells = nbformat.read(lesson, as_version=4).cells
    return sum(len(SOLUTION_DIRECTIVE.findall(c.source)) for c in cells
               if c.cell_type == "markdown")


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_solutions_are_collapsed_on_load_and_open_on_click(book_site, lesson):
    _, facts = book_site.visit(lesson_page(book_site, lesson))
    clicks = facts["solutionClicks"]
    assert "error" not in clicks, f"{lesson.name}: {clicks.get('error')}"
    written = solutions_written(lesson)
    if not written:
        pytest.skip(f"{lesson.name} has no solutions")
    assert len(clicks["solutions"]) == written, (
        f"{lesson.name} has {written} solutions, its page {len(clicks['solutions'])} "
        "collapsible ones (div.solution.dropdown)"
    )
    for state in clicks["solutions"]:
        name = state["name"]
        assert state["parts"] > 0, f"{name}: the solution has no body"
        assert not any(state["visible_on_load"]), f"{name}: the solution is visible on load"
        assert state["expanded_on_load"] == "false"
        assert all(state["visible_when_open"]), f"{name}: the solution did not open on click"
        assert state["code_visible"], f"{name}: its code is hidden"


# ---------------------------------------------------------------------------------------------
# Search.


def search(book_site: Site, term: str) -> list[str]:
    """Search the book with its own search page; the site-relative pages found, in order."""
    page = book_site.context.new_page()
    try:
        page.goto(book_site.url(f"search.html?q={term}"), wait_until="load")
        page.wait_for_function(
            """() => {
                 const s = document.querySelector('#search-results .search-summary');
                 return s && !/Preparing/.test(s.textContent) && s.textContent.trim() !== '';
               }""",
            timeout=20_000,
        )
        hrefs = page.eval_on_selector_all(
            "#search-results ul.search > li > a:first-of-type", "links => links.map(a => a.href)"
        )
    finally:
        page.close()
    found = []
    for href in hrefs:
        path = book_site.relative(href.split("#", 1)[0].split("?", 1)[0])
        if path and path not in found:
            found.append(path)
    return found


def test_search_for_vanishing_finds_the_warm_up_or_chapter_3(book_site):
    found = search(book_site, "vanishing")
    assert any(p == "lessons/00_warmup.html" or p.startswith("lessons/03_") for p in found), found


def test_search_for_sigmoid_finds_the_warm_up(book_site):
    assert "lessons/00_warmup.html" in search(book_site, "sigmoid")


@pytest.mark.parametrize(
    ("term", "chapter"),
    [
        pytest.param(
            "forget gate",
            "lessons/04_lstm.html",
            marks=pytest.mark.skipif(
                not LSTM_CHAPTER.exists(),
                reason="the LSTM chapter lessons/04_lstm.ipynb is not written yet; this test "
                "turns itself on when it lands",
            ),
            id="forget-gate-in-lstm-chapter",
        ),
    ],
)
def test_search_finds_the_chapter(book_site, term, chapter):
    assert chapter in search(book_site, term)


# ---------------------------------------------------------------------------------------------
# The download button.


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_download_button_serves_the_lesson_notebook(book_site, lesson):
    _, facts = book_site.visit(lesson_page(book_site, lesson))
    served = facts["download"]
    assert "error" not in served, f"{lesson.name}: {served.get('error')}"
    href = served["href"]
    assert served["status"] == 200, f"{href}: HTTP {served['status']}"
    downloaded = nbformat.reads(served["text"], as_version=4)
    shipped = nbformat.read(lesson, as_version=4)
    assert [(c.cell_type, c.source) for c in downloaded.cells] == [
        (c.cell_type, c.source) for c in shipped.cells
    ], f"{href} is not lessons/{lesson.name}"


# ---------------------------------------------------------------------------------------------
# Phone width, and screenshots for review.


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_fits_a_phone(book_site, lesson):
    """Loaded at a phone's width, nothing scrolls sideways. With ``--screenshots``: screenshots
    at desktop width (taken when the page was first loaded, in a tab of ``bt.DESKTOP`` size)
    and at phone width."""
    problems = []
    if book_site.screenshots:  # the desktop one is taken when the page is first visited
        book_site.visit(lesson_page(book_site, lesson))
        assert (book_site.screenshots / f"{lesson.stem}-desktop.jpg").exists()
    page = book_site.context.new_page()
    try:
        page.set_viewport_size(PHONE)
        page.goto(book_site.url(lesson_page(book_site, lesson)), wait_until="load")
        bt.wait_for_mathjax(page)
        bt.wait_for_images(page)
        bt.save_screenshot(page, book_site.screenshots, f"{lesson.stem}-phone.jpg",
                           full_page=True)
        layout = page.evaluate(
            """() => ({
                 scrollWidth: document.documentElement.scrollWidth,
                 innerWidth: window.innerWidth,
                 wide: Array.from(document.querySelectorAll('main *'))
                   .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                                && e.getBoundingClientRect().width > 0
                                && !e.closest('.highlight, .MathJax, mjx-container, pre,'
                                              + ' .pst-scrollable-table-container'))
                   .slice(0, 5).map(e => e.tagName + '.' + e.className),
                 images: Array.from(document.querySelectorAll('main img')).map(i => ({
                   src: i.src.split('/').pop(),
                   width: i.getBoundingClientRect().width,
                   right: i.getBoundingClientRect().right})),
               })"""
        )
        if layout["scrollWidth"] > layout["innerWidth"] + 1:
            problems.append(
                f"phone: the page scrolls sideways ({layout['scrollWidth']}px wide in a "
                f"{layout['innerWidth']}px viewport); widest offenders: {layout['wide']}"
            )
        for image in layout["images"]:
            if image["width"] > layout["innerWidth"] or image["right"] > layout[
                "innerWidth"
            ] + 1:
                problems.append(f"phone: image {image['src']} overflows: {image}")
    finally:
        page.close()
    assert not problems, f"{lesson.stem}:\n  " + "\n  ".join(problems)
