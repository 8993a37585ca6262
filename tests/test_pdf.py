"""The whole book as one PDF (``python book/make_pdf.py``), made from the strict build's
executed lessons (the ``built_book`` fixture), so no lesson runs again: it exists, has a page
per few screens of text and an outline, contains every chapter's title and every lesson's
figures and printed results, shows no raw TeX outside code, and the book's introduction links
to it."""

import re
import subprocess
import sys
import unicodedata

import pytest
from bs4 import BeautifulSoup

from .lesson_tools import ROOT, figure_captions, read, toc_files


def _flat(text: str) -> str:
    """NFKC (the PDF's ligatures "ﬁ" become "fi") with all whitespace removed."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@pytest.fixture(scope="session")
def pdf(built_book):
    build_dir, _ = built_book
    output = build_dir / "pdf" / "gated-memory.pdf"
    # its own process: the browser tests' Playwright may already hold this one's event loop
    subprocess.run([sys.executable, str(ROOT / "book" / "make_pdf.py"), "--build-dir",
                    str(build_dir), "--output", str(output)], check=True, cwd=ROOT)
    import pypdfium2

    document = pypdfium2.PdfDocument(str(output))
    text = "\n".join(page.get_textpage().get_text_range() for page in document)
    return output, document, text


def chapter_titles() -> list[str]:
    titles = []
    for page in sorted(toc_files()):
        path = ROOT / f"{page}.ipynb"
        if path.exists():
            source = next(c.source for c in read(path).cells if c.cell_type == "markdown")
        else:
            source = (ROOT / f"{page}.md").read_text(encoding="utf-8")
        titles.append(re.search(r"^# (.+)$", source, re.M).group(1).strip())
    return titles


def test_the_pdf_has_a_page_per_few_screens_and_an_outline(pdf):
    _, document, text = pdf
    pages = len(document)
    assert pages >= 60, f"only {pages} pages for the whole book"
    assert len(text) / pages < 4000, "pages are denser than print allows: is the text cut off?"
    assert list(document.get_toc()), "the PDF has no outline (table of contents)"


def _executed_lessons(build_dir):
    return sorted((build_dir / "jupyter_execute" / "lessons").glob("*.ipynb"))


def test_the_pdf_shows_every_figure_and_printed_result_of_the_lessons(built_book, pdf):
    """The lessons' outputs, as the build executed them: as many images as they drew
    figures, and the first printed line of each lesson."""
    import pypdfium2.raw as pdfium_c

    build_dir, _ = built_book
    _, document, text = pdf
    figures, missing = 0, []
    for path in _executed_lessons(build_dir):
        outputs = [o for c in read(path).cells if c.cell_type == "code" for o in c.outputs]
        figures += sum("image/png" in o.get("data", {}) for o in outputs)
        printed = [line.strip() for o in outputs if o.get("name") == "stdout"
                   for line in o.text.splitlines() if line.strip()]
        assert printed, f"{path.name} as executed by the build printed nothing"
        if _flat(printed[0]) not in _flat(text):
            missing.append(f"{path.name}: {printed[0]!r}")
    images = sum(len(list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])))
                 for page in document)
    assert figures >= 20 and images >= figures, f"{images} images for {figures} figures"
    assert not missing, f"printed results missing from the PDF: {missing}"


def test_the_pdf_contains_every_chapter_title(pdf):
    _, _, text = pdf
    flat = _flat(text)
    missing = [title for title in chapter_titles() if _flat(title) not in flat]
    assert not missing, f"chapter titles missing from the PDF: {missing}"


def code_text() -> str:
    """Everything the book shows as code, whitespace removed: the lessons' code cells, and the
    code blocks and inline code of every page (lessons' Markdown and book/*.md)."""
    code, markdown = [], []
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        for cell in read(path).cells:
            (code if cell.cell_type == "code" else markdown).append(cell.source)
    markdown += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "book").glob("*.md"))]
    for source in markdown:
        code += [block for _, block in re.findall(r"^(`{3,})[^\n]*\n(.*?)^\1", source,
                                                    re.M | re.S)]
        code += re.findall(r"`([^`\n]+)`", source)
    return _flat("\n".join(code))


def test_the_pdf_shows_no_raw_tex_outside_code(pdf):
    """Every TeX command or ``$$`` left in the text must come from code (a plot label such as
    ``r"$\\sigma(z)$"`` is code, and shown as such); ``\\tag`` and ``\\begin`` never are."""
    _, _, text = pdf
    assert "\\tag" not in text and "\\begin{" not in text
    code, flat = code_text(), _flat(text)

    def in_code(start: int, end: int) -> bool:
        """Some window of the match and at least 5 characters around it is code (code blocks
        wrap, and inline code sits between words, so no one window fits every case)."""
        windows = [(b, a) for b in (0, 2, 5, 10) for a in (0, 2, 5, 10) if b + a >= 5]
        return any(flat[max(0, start - b): end + a] in code for b, a in windows)

    outside = [flat[max(0, m.start() - 12): m.end() + 12]
               for m in re.finditer(r"\\[A-Za-z]{2,}|\$\$", flat) if not in_code(*m.span())]
    assert not outside, f"raw TeX in the PDF's text: {outside[:10]}"


def test_the_introduction_links_to_the_pdf(built_book, pdf):
    build_dir, _ = built_book
    output, _, _ = pdf
    intro = build_dir / "html" / "book" / "intro.html"
    links = [a["href"] for a in BeautifulSoup(intro.read_text(encoding="utf-8"),
                                              "html.parser").find_all("a", href=True)]
    targets = [(intro.parent / href).resolve() for href in links if href.endswith(".pdf")]
    assert output.resolve() in targets, f"intro.html links to {targets}, not to {output}"


def test_the_pdf_numbers_figures_by_chapter_as_the_lessons_do(pdf):
    """The figures carry the lessons' numbers ("Fig. 4.3", as the book's pages and the caption
    cells JupyterLab shows): each lesson's caption numbers appear in the PDF, in order."""
    _, _, text = pdf
    flat = _flat(text)
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        captions = figure_captions(path)
        assert captions, f"{path.name} has no captioned figure"
        found = {number: flat.find(_flat(number) + _flat(first_words(caption)))
                 for number, caption in captions}
        assert -1 not in found.values(), f"{path.name}: {found}"
        assert list(found.values()) == sorted(found.values()), f"{path.name}: out of order"


def first_words(caption: str) -> str:
    """The start of a caption before any markup, math or quote (which the PDF sets otherwise)."""
    return re.split(r"[$`*\[\"'’“”]", caption)[0][:30]
