"""One source for the lessons, two renderers: the book (Sphinx, myst-nb) and JupyterLab
(jupyterlab-myst). This module holds the forms the lessons' Markdown uses so that both show the
same thing, and it is both

- a **script** that rewrites lessons into those forms (idempotent: running it twice changes
  nothing, and ``tests/test_lesson_forms.py`` checks that the lessons are a fixed point)::

      python book/_ext/lesson_forms.py            # rewrite lessons/*.ipynb in place
      python book/_ext/lesson_forms.py --check    # exit 1, naming the lessons it would change

- a **Sphinx extension** (``sphinx: local_extensions`` in ``_config.yml``) that reads those
  forms back into the book.

The forms, and why:

- **Citations.** jupyterlab-myst has no bibliography, so a ``{cite:p}`` role shows a raw key
  with a warning. The lessons store a citation as a Markdown link whose text is the book's
  author-year text and whose target is the references page, the role and keys kept in the
  fragment: ``[[Bengio et al., 1994]](../book/references.md#cite:p:bengio1994learning)``. The
  script turns any ``{cite:p}``/``{cite:t}`` role written by an author into that form (and
  refreshes the text from ``references.bib``); the extension turns the link back into the role
  when Sphinx reads the lesson, so the book keeps sphinxcontrib-bibtex's citations.
  JupyterLab opens that page as text when such a link is clicked, where the ``{bibliography}``
  directive lists nothing; so the script also writes, below the directive, the same list as
  plain-text MyST comments (which the book does not render), from ``references.bib`` in the
  book's own pybtex style.
- **Equation and exercise numbers.** Equations carry their book number as ``\\tag{4.7}``;
  exercises are numbered per chapter ("Exercise 4.2"). A YAML front matter at the top of the
  first Markdown cell tells jupyterlab-myst not to add its own equation counter and to number
  exercises with the chapter's prefix; the extension strips that block for the book and renumbers
  the book's exercises per chapter.
- **Exercises** are one non-gated ``{exercise}`` box holding the statement, followed by the stub
  and check cells (gated ``exercise-start``/``exercise-end`` pairs span cells, which JupyterLab
  renders as two separate boxes).
- **Solutions** embed the reference solution's source (``inspect.getsource``) in a code block,
  since ``literalinclude`` cannot render in JupyterLab; the script refreshes it, so a solution
  cannot drift from the tested reference without the fixed-point test failing.
- **Figure captions.** A figure is a code cell whose ``mystnb.figure`` metadata names it; its
  caption is the Markdown cell right after it, tagged ``figure-caption`` and starting with the
  figure's number in bold, ``**Fig. 4.3**``. jupyterlab-myst shows no caption for a figure drawn
  by code (jupyter-book/jupyterlab-myst#176), so in JupyterLab that cell is the caption, below
  the figure once the cell has run. The script numbers the caption cells per chapter (and turns
  a caption still kept in the metadata into such a cell); the extension moves each caption back
  into its figure's metadata when Sphinx reads the lesson, drops the cell, and numbers the
  book's figures per chapter too, so that "Fig. 4.3" is the same figure in both.
- **Notebook metadata** holds the ``language_info`` the kernel reports, so that JupyterLab does
  not rewrite it (and mark the notebook modified) when the kernel starts.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LESSONS_DIR = ROOT / "lessons"
BIBLIOGRAPHY = ROOT / "references.bib"
REFERENCES_PAGE = "../book/references.md"  # the target of the lessons' citation links
REFERENCES_FILE = ROOT / "book" / "references.md"
REFERENCES_MARKER = "% The works above as plain text, for reading this file outside the book:"
REFERENCES_NOTE = (
    "% JupyterLab opens it as text when a lesson's citation link is clicked. Written from",
    "% references.bib by `python book/_ext/lesson_forms.py`; do not edit below this line.",
)

# What ipykernel reports for Python 3.11 (kernel_info_reply), stored so that JupyterLab finds
# nothing to update when the kernel starts. The patch version is the course environment's.
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": "3.11.7",
}

ROLE = re.compile(r"\{cite:(?P<kind>[pt])\}`(?P<keys>[^`]+)`")
LINK = re.compile(
    r"\[(?P<text>(?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]"
    r"\(" + re.escape(REFERENCES_PAGE) + r"#cite:(?P<kind>[pt]):(?P<keys>[^)\s]+)\)"
)
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
EXERCISE_START = re.compile(
    r"^(?P<fence>`{3,})\{exercise-start\}[ \t]*(?P<title>[^\n]*)\n"
    r"(?P<options>(?::[^\n]*\n)*)(?P=fence)[ \t]*\n?",
    re.M,
)
EXERCISE_END = re.compile(
    r"^(?P<fence>`{3,})\{exercise-end\}[ \t]*\n(?P=fence)[ \t]*(\n+|\Z)", re.M
)
SOLUTION = re.compile(
    r"^(?P<fence>`{3,})\{solution\}[ \t]*(?P<label>\S+)[ \t]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
LAB_NOTE = re.compile(  # the pointer to show_solution that solutions carried before
    r"\(In JupyterLab this box cannot show the file;.*?the same code\.\)\n*", re.S
)
CODE_BLOCK = re.compile(r"^(`{3,})(\{literalinclude\}|python)[^\n]*\n.*?^\1[ \t]*\n*", re.M | re.S)
CHECK_CALL = re.compile(r"^check\(\s*[\"'](?P<id>\w+)[\"']", re.M)
LABEL_OPTION = re.compile(r"^:label:[ \t]*(?P<label>\S+)", re.M)
CAPTION_TAG = "figure-caption"
CAPTION_NUMBER = re.compile(r"\A\*\*(?P<number>Fig\. [^*\n]*)\*\*[ \t]*")


# ---------------------------------------------------------------------------------------------
# Chapters and their numbering


def chapter_label(stem: str) -> str:
    """The prefix of a lesson's equation and exercise numbers: ``00_warmup`` -> ``W``,
    ``04_lstm`` -> ``4``."""
    match = re.match(r"(\d+)_", stem)
    if not match:
        raise ValueError(f"lesson file names start with their chapter number, got {stem!r}")
    number = int(match.group(1))
    return "W" if number == 0 else str(number)


def front_matter(stem: str) -> str:
    """The block that makes jupyterlab-myst number as the book does."""
    return (
        "---\n"
        "numbering:\n"
        "  equation: false\n"
        "  subequation: false\n"
        "  exercise:\n"
        f"    enumerator: {chapter_label(stem)}.%s\n"
        "---\n"
    )


# ---------------------------------------------------------------------------------------------
# Citations


def citation_labels(bibliography: Path = BIBLIOGRAPHY) -> dict[str, tuple[str, str]]:
    """``key -> (who, year)`` as the book's author-year style writes them: "Hochreiter and
    Schmidhuber", "Pascanu et al." (``authoryear_bibliography.author_year``, which labels the
    book's list)."""
    from authoryear_bibliography import author_year
    from pybtex.database import parse_file

    return {key: author_year(entry)
            for key, entry in parse_file(str(bibliography)).entries.items()}


def references_as_text(text: str, bibliography: Path = BIBLIOGRAPHY) -> str:
    """The references page with, after its ``{bibliography}`` directive, the same list as
    plain-text MyST comments (:data:`REFERENCES_MARKER` to the end of the file, rewritten each
    time): the book renders only the directive, and JupyterLab, which opens the page as text
    when a lesson's citation link is clicked, shows the works."""
    from authoryear_bibliography import AuthorYearStyle
    from pybtex.database import parse_file

    entries = AuthorYearStyle().format_bibliography(parse_file(str(bibliography)))
    lines = [REFERENCES_MARKER, *REFERENCES_NOTE, "%"]
    for entry in entries:
        lines += textwrap.wrap(f"[{entry.label}] {entry.text.render_as('text')}", width=96,
                               initial_indent="% ", subsequent_indent="%   ",
                               break_long_words=False, break_on_hyphens=False)
    head = text.split(REFERENCES_MARKER)[0].rstrip("\n")
    return head + "\n\n" + "\n".join(lines) + "\n"


def citation_text(kind: str, keys: list[str], labels: dict[str, tuple[str, str]]) -> str:
    """The text sphinxcontrib-bibtex's author_year style gives a role: ``{cite:p}`` ->
    "[Bengio et al., 1994, Pascanu et al., 2013]", ``{cite:t}`` -> "Elman [1990]"."""
    unknown = [key for key in keys if key not in labels]
    if unknown:
        raise KeyError(f"citation key(s) {', '.join(unknown)} not in {BIBLIOGRAPHY.name}")
    if kind == "p":
        return "[" + ", ".join(f"{labels[k][0]}, {labels[k][1]}" for k in keys) + "]"
    return ", ".join(f"{labels[k][0]} [{labels[k][1]}]" for k in keys)


def citation_link(kind: str, keys: list[str], labels) -> str:
    text = citation_text(kind, keys, labels)
    return f"[{text}]({REFERENCES_PAGE}#cite:{kind}:{','.join(keys)})"


def _split_keys(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",") if key.strip()]


def cite_roles_to_links(text: str, labels) -> str:
    """Every citation of ``text`` in the lesson form, its text refreshed from the bibliography."""
    text = ROLE.sub(lambda m: citation_link(m["kind"], _split_keys(m["keys"]), labels), text)
    return LINK.sub(lambda m: citation_link(m["kind"], _split_keys(m["keys"]), labels), text)


def cite_links_to_roles(text: str) -> str:
    """The book's side: each lesson-form citation becomes a ``{cite:p}``/``{cite:t}`` role."""
    return LINK.sub(lambda m: f"{{cite:{m['kind']}}}`{m['keys']}`", text)


# ---------------------------------------------------------------------------------------------
# Exercises and solutions


def _fence_for(body: str) -> str:
    """A backtick fence longer than any fence inside ``body`` (at least four)."""
    inner = [len(m.group(0)) for m in re.finditer(r"^`{3,}", body, re.M)]
    return "`" * max(4, max(inner, default=0) + 1)


def _exercise_box(title: str, options: str, statement: str) -> str:
    statement = statement.strip("\n")
    fence = _fence_for(statement)
    head = f"{fence}{{exercise}} {title}".rstrip() + "\n" + options
    return f"{head}\n{statement}\n{fence}"


def ungate_exercises(cells: list[dict]) -> list[dict]:
    """``exercise-start`` ... ``exercise-end`` pairs (spanning the stub and check cells) become
    one ``{exercise}`` box with the statement, before the stub cell; cells left empty go."""
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        text = _text(cell)
        match = EXERCISE_START.search(text)
        if not match:
            continue
        before, statement = text[: match.start()], text[match.end():]
        box = _exercise_box(match["title"].strip(), match["options"], statement)
        _set_text(cell, before + box + "\n")
    kept = []
    for cell in cells:
        if cell["cell_type"] == "markdown" and EXERCISE_END.search(_text(cell)):
            text = EXERCISE_END.sub("", _text(cell))
            if not text.strip():
                continue
            _set_text(cell, text)
        kept.append(cell)
    return kept


def _exercise_ids_by_label(cells: list[dict]) -> dict[str, str]:
    """``exercise label -> exercise id``: the id checked by the first check cell after the
    Markdown cell that defines the label."""
    found, pending = {}, []
    for cell in cells:
        text = _text(cell)
        if cell["cell_type"] == "markdown":
            for box in re.finditer(r"\{exercise(?:-start)?\}[^\n]*\n((?::[^\n]*\n)*)", text):
                label = LABEL_OPTION.search(box.group(1))
                if label:
                    pending.append(label["label"])
        elif pending:
            check = CHECK_CALL.search(text)
            if check:
                for label in pending:
                    found[label] = check["id"]
                pending = []
    return found


def reference_source(exercise_id: str) -> str:
    from companion import exercises

    source = inspect.getsource(exercises.get(exercise_id).reference)
    return source if source.endswith("\n") else source + "\n"


def embed_solutions(cells: list[dict], stem: str) -> None:
    """Each ``{solution}`` shows its exercise's reference source in a code block (replacing a
    ``literalinclude``, the JupyterLab note, or an outdated copy)."""
    ids = _exercise_ids_by_label(cells)

    def rewrite(match: re.Match) -> str:
        label = match["label"]
        if label not in ids:
            raise ValueError(f"{stem}: no check cell follows the exercise of solution {label!r}")
        body = LAB_NOTE.sub("", match["body"])
        body = CODE_BLOCK.sub("", body).rstrip("\n")
        code = reference_source(ids[label])
        code_fence = "`" * 3
        block = f"{code_fence}python\n{code}{code_fence}"
        fence = _fence_for(block + "\n" + body)
        options, _, prose = body.partition("\n\n") if body.startswith(":") else ("", "", body)
        parts = [f"{fence}{{solution}} {label}" + ("\n" + options if options else "")]
        if prose.strip():
            parts.append(prose.strip("\n"))
        parts.append(block)
        return "\n\n".join(parts) + "\n" + fence

    for cell in cells:
        if cell["cell_type"] == "markdown" and "{solution}" in _text(cell):
            _set_text(cell, SOLUTION.sub(rewrite, _text(cell)))


# ---------------------------------------------------------------------------------------------
# Figures and their captions


def _figure(cell: dict) -> dict | None:
    """The ``mystnb.figure`` metadata of a figure cell (a code cell), else ``None``."""
    if cell["cell_type"] != "code":
        return None
    return cell.get("metadata", {}).get("mystnb", {}).get("figure")


def _is_caption(cell: dict | None) -> bool:
    return (cell is not None and cell["cell_type"] == "markdown"
            and CAPTION_TAG in cell.get("metadata", {}).get("tags", []))


def caption_text(cell: dict) -> str:
    """A caption cell's caption, without its number."""
    return CAPTION_NUMBER.sub("", _text(cell)).strip()


def caption_number(cell: dict) -> str | None:
    """A caption cell's number as shown, ``"Fig. 4.3"`` (``None`` if it has none)."""
    match = CAPTION_NUMBER.match(_text(cell))
    return match["number"] if match else None


def _caption_cell(figure_cell: dict, text: str) -> dict:
    cell = {"cell_type": "markdown"}
    if "id" in figure_cell:  # nbformat 4.5: an id of at most 64 characters
        cell["id"] = f"{figure_cell['id']}-caption"[-64:]
    cell.update(metadata={"tags": [CAPTION_TAG]}, source=[])
    _set_text(cell, text)
    return cell


def caption_figures(cells: list[dict], stem: str) -> list[dict]:
    """Each figure cell followed by its caption cell, numbered ``**Fig. <chapter>.<n>**`` in
    the lesson's order; a caption still in the figure's metadata moves into a new caption cell
    (if the figure has a caption cell already, that cell's text is kept). A figure without a
    caption, or a caption cell after no figure, is an error."""
    label, kept, number = chapter_label(stem), [], 0
    for index, cell in enumerate(cells):
        if _is_caption(cell):
            if index == 0 or _figure(cells[index - 1]) is None:
                raise ValueError(f"{stem}: a {CAPTION_TAG} cell must follow a figure cell: "
                                 f"{_text(cell)[:60]!r}")
            continue  # rewritten with its figure
        kept.append(cell)
        figure = _figure(cell)
        if figure is None:
            continue
        number += 1
        following = cells[index + 1] if index + 1 < len(cells) else None
        in_metadata = figure.pop("caption", None)
        if _is_caption(following):
            caption, text = following, caption_text(following)
        elif in_metadata:
            caption, text = _caption_cell(cell, ""), in_metadata.strip()
        else:
            raise ValueError(f"{stem}: the figure {figure.get('name', '')!r} has no caption: "
                             f"a Markdown cell tagged {CAPTION_TAG!r} after its code cell")
        _set_text(caption, f"**Fig. {label}.{number}** {text}")
        kept.append(caption)
    return kept


def captions_into_figures(cells: list[dict]) -> list[dict]:
    """The book's side: each caption cell's text becomes its figure's ``mystnb.figure`` caption,
    and the cell goes (myst-nb puts the caption under the figure, with the book's number)."""
    kept = []
    for cell in cells:
        if _is_caption(cell) and kept and _figure(kept[-1]) is not None:
            _figure(kept[-1])["caption"] = caption_text(cell)
            continue
        kept.append(cell)
    return kept


# ---------------------------------------------------------------------------------------------
# Whole notebooks


def _text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _set_text(cell: dict, text: str) -> None:
    text = text.rstrip("\n")
    cell["source"] = text.splitlines(keepends=True)


def _first_markdown(cells: list[dict]) -> dict:
    for cell in cells:
        if cell["cell_type"] == "markdown":
            return cell
    raise ValueError("a lesson starts with a Markdown cell holding its title")


def normalise(nb: dict, stem: str, labels=None) -> dict:
    """The lesson ``nb`` (notebook JSON as a dict) in the forms above; a new dict."""
    nb = json.loads(json.dumps(nb))
    labels = citation_labels() if labels is None else labels
    cells = caption_figures(nb["cells"], stem)
    for cell in cells:
        if cell["cell_type"] == "markdown":
            _set_text(cell, cite_roles_to_links(_text(cell), labels))
    cells = ungate_exercises(cells)
    embed_solutions(cells, stem)
    first = _first_markdown(cells)
    _set_text(first, front_matter(stem) + FRONT_MATTER.sub("", _text(first)))
    nb["cells"] = cells
    nb["metadata"]["language_info"] = dict(LANGUAGE_INFO)
    return nb


def dumps(nb: dict) -> str:
    """The notebook JSON as the repository stores it (nbformat's layout)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def lesson_paths() -> list[Path]:
    return sorted(LESSONS_DIR.glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", type=Path,
                        help="default: every lessons/*.ipynb, and the references page's text list")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a lesson (or the references list) "
                        "is not in its form")
    args = parser.parse_args(argv)
    labels = citation_labels()
    rewrites = [(path, lambda raw, stem=path.stem: dumps(normalise(json.loads(raw), stem, labels)))
                for path in args.lessons or lesson_paths()]
    if not args.lessons:
        rewrites.append((REFERENCES_FILE, references_as_text))
    changed = []
    for path, rewrite in rewrites:
        raw = path.read_text(encoding="utf-8")
        new = rewrite(raw)
        if new != raw:
            changed.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in changed:
        print(f"{'would rewrite' if args.check else 'rewrote'} {path}")
    return 1 if (args.check and changed) else 0


# ---------------------------------------------------------------------------------------------
# The Sphinx side


def _is_lesson(docname: str) -> bool:
    return docname.startswith("lessons/")


def book_form(nb: dict) -> dict:
    """The lesson ``nb`` as the book reads it (changed in place, and returned): citation links
    become cite roles, the front matter meant for jupyterlab-myst goes (myst-nb would print
    it), and each caption cell moves into its figure's metadata. The build's parallel
    execution caches each executed lesson in this form too, since jupyter-cache's key covers
    the code cells' metadata."""
    first = True
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = cite_links_to_roles(_text(cell))
        if first:
            text, first = FRONT_MATTER.sub("", text), False
        cell["source"] = text
    nb["cells"] = captions_into_figures(nb["cells"])
    return nb


def _read_lesson_forms(app, docname, source):
    """source-read: a lesson as the book reads it (:func:`book_form`)."""
    if not _is_lesson(docname) or not source[0].lstrip().startswith("{"):
        return
    source[0] = json.dumps(book_form(json.loads(source[0])), ensure_ascii=False)


def _number_by_chapter(app, env):
    """env-get-updated, after Sphinx numbered the figures: a lesson's exercises and figures are
    numbered "<chapter>.<n>" (as in JupyterLab) instead of on one count across the book."""
    for docname, numbers in env.toc_fignumbers.items():
        if not _is_lesson(docname):
            continue
        label = chapter_label(Path(docname).name)
        for kind in set(numbers) & {"exercise", "figure"}:
            ordered = sorted(numbers[kind].items(), key=lambda item: item[1])
            numbers[kind] = {ids: (label, n) for n, (ids, _) in enumerate(ordered, start=1)}
    return []


def setup(app):
    app.connect("source-read", _read_lesson_forms)
    app.connect("env-get-updated", _number_by_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
