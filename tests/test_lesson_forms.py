"""The lessons' Markdown is in the forms that the book and JupyterLab render alike
(``book/_ext/lesson_forms.py``): the lessons are a fixed point of that script, so a citation,
exercise or solution written in another form, or a solution that drifted from its tested
reference, fails here with the command that fixes it."""

import importlib.util
import inspect
import json
import re

import nbformat
import pytest

from companion import exercises

from .lesson_tools import LESSONS, ROOT, read

FIX = "run `python book/_ext/lesson_forms.py` to rewrite the lessons"


def _load_lesson_forms():
    spec = importlib.util.spec_from_file_location(
        "lesson_forms", ROOT / "book" / "_ext" / "lesson_forms.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lesson_forms = _load_lesson_forms()
LESSON_IDS = [p.stem for p in LESSONS]


def markdown(path) -> str:
    return "\n".join(c.source for c in read(path).cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_the_lesson_is_a_fixed_point_of_the_script(path):
    raw = path.read_text(encoding="utf-8")
    assert lesson_forms.dumps(lesson_forms.normalise(json.loads(raw), path.stem)) == raw, (
        f"{path.name} is not in the lesson forms: {FIX}"
    )


def test_every_solution_shows_its_tested_reference_code():
    """The code in each solution box is ``inspect.getsource`` of the exercise's reference."""
    for exercise_id in exercises.ids():
        exercise = exercises.get(exercise_id)
        source = inspect.getsource(exercise.reference)
        text = markdown(ROOT / exercise.lesson)
        assert f"```python\n{source.rstrip()}\n```" in text, (
            f"the solution of {exercise_id} is not its reference's source: {FIX}"
        )


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_no_form_that_jupyterlab_cannot_render(path):
    text = markdown(path)
    for form, why in [
        (r"\{cite:[pt]\}", "a cite role shows as a raw key in JupyterLab"),
        (r"\{exercise-(start|end)\}", "a gated exercise shows as two boxes in JupyterLab"),
        (r"\{literalinclude\}", "a literalinclude shows nothing in JupyterLab"),
    ]:
        assert not re.search(form, text), f"{path.name}: {why}; {FIX}"
    # jupyterlab-myst resolves a cross-reference only to a target in the lesson's own Markdown
    # (not to another lesson, nor to a figure that a code cell's metadata names)
    defined = set(re.findall(r"^:(?:name|label):[ \t]*(\S+)", text, re.M))
    defined |= set(re.findall(r"^\((\S+)\)=", text, re.M))
    for role, target in re.findall(r"\{(numref|ref|eq)\}`(?:[^`<]*<)?([^`>]+)>?`", text):
        assert target in defined, (
            f"{path.name}: {{{role}}}`{target}` cannot resolve in JupyterLab; link to the "
            f"lesson instead, e.g. [chapter 1](01_rnn.ipynb)")


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_the_front_matter_numbers_exercises_by_chapter_and_leaves_tags_alone(path):
    first = next(c for c in read(path).cells if c.cell_type == "markdown")
    label = lesson_forms.chapter_label(path.stem)
    assert first.source.startswith(
        f"---\nnumbering:\n  equation: false\n  subequation: false\n  exercise:\n"
        f"    enumerator: {label}.%s\n---\n"
    )
    tags = re.findall(r"\\tag\{([^}]*)\}", markdown(path))
    assert tags, f"{path.name} numbers no equation"
    assert all(tag.startswith(f"{label}.") for tag in tags), (
        f"{path.name}: equation tags must start with the chapter's {label}.: {tags}"
    )


def test_a_lesson_in_the_old_forms_is_rewritten_and_stays_rewritten():
    """Gated exercise, cite roles, literalinclude and a stale language_info, as authors wrote
    them before: rewritten once into the lesson forms, then left alone."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Warm-up\n\nAs {cite:t}`hochreiter1997lstm` and others showed "
            "{cite:p}`bengio1994learning,pascanu2013difficulty`."),
        nbformat.v4.new_markdown_cell(
            "## Exercises\n\n```{exercise-start} A sigmoid\n:label: ex-sigmoid\n```\n\n"
            "Implement $\\sigma$."),
        nbformat.v4.new_code_cell("def sigmoid(z):\n    raise NotImplementedError"),
        nbformat.v4.new_code_cell('check("sigmoid", sigmoid)'),
        nbformat.v4.new_markdown_cell(
            "```{exercise-end}\n```\n\n````{solution} ex-sigmoid\n:class: dropdown\n\n"
            "The companion's code:\n\n```{literalinclude} ../companion/activations.py\n"
            ":pyobject: sigmoid\n```\n````\n\nAfter the solution."),
    ]
    once = lesson_forms.normalise(json.loads(nbformat.writes(nb)), "00_warmup")
    twice = lesson_forms.normalise(once, "00_warmup")
    assert twice == once
    cells = ["".join(c["source"]) for c in once["cells"]]
    assert cells[0].startswith("---\nnumbering:\n")
    assert ("As [Hochreiter and Schmidhuber [1997]](../book/references.md#cite:t:"
            "hochreiter1997lstm) and others showed [[Bengio et al., 1994, Pascanu et al., "
            "2013]](../book/references.md#cite:p:bengio1994learning,pascanu2013difficulty).")\
        in cells[0]
    assert cells[1] == ("## Exercises\n\n````{exercise} A sigmoid\n:label: ex-sigmoid\n\n"
                        "Implement $\\sigma$.\n````")
    source = inspect.getsource(exercises.get("sigmoid").reference)
    assert cells[4] == (f"````{{solution}} ex-sigmoid\n:class: dropdown\n\nThe companion's code:"
                        f"\n\n```python\n{source}```\n````\n\nAfter the solution.")
    assert once["metadata"]["language_info"] == lesson_forms.LANGUAGE_INFO


def test_the_book_reads_citation_links_back_as_cite_roles():
    labels = lesson_forms.citation_labels()
    for role in ["{cite:p}`gers2000forget`", "{cite:t}`cho2014learning`",
                 "{cite:p}`chung2014empirical,greff2017lstm`"]:
        text = f"as shown {role}."
        lab = lesson_forms.cite_roles_to_links(text, labels)
        assert "{cite" not in lab
        assert lesson_forms.cite_links_to_roles(lab) == text


def test_the_references_page_lists_every_work_as_text_for_jupyterlab():
    """JupyterLab opens book/references.md as text when a citation is clicked: below the
    book's {bibliography} directive the page carries the same list as MyST comments, written by
    the script, so a work added to references.bib without rerunning it fails here."""
    page = lesson_forms.REFERENCES_FILE.read_text(encoding="utf-8")
    assert lesson_forms.references_as_text(page) == page, f"references.md is stale: {FIX}"
    head, listed = page.split(lesson_forms.REFERENCES_MARKER)
    assert "```{bibliography}" in head
    assert all(line.startswith("%") for line in listed.splitlines()[1:])
    for who, year in lesson_forms.citation_labels().values():
        assert f"% [{who}, {year}] " in listed


def test_an_unknown_citation_key_is_an_error_naming_it():
    with pytest.raises(KeyError, match="nosuchkey2099"):
        lesson_forms.cite_roles_to_links("{cite:p}`nosuchkey2099`", lesson_forms.citation_labels())


def test_chapter_labels():
    assert lesson_forms.chapter_label("00_warmup") == "W"
    assert lesson_forms.chapter_label("04_lstm") == "4"
    with pytest.raises(ValueError, match="chapter number"):
        lesson_forms.chapter_label("warmup")


# --- figure captions ---------------------------------------------------------------------------

def _figure_cell(name: str, caption: str | None = None) -> dict:
    figure = {"name": name} if caption is None else {"name": name, "caption": caption}
    cell = nbformat.v4.new_code_cell("plt.show()", id=name)
    cell.metadata["mystnb"] = {"figure": figure}
    return json.loads(json.dumps(cell))


def _markdown(text: str, tags=()) -> dict:
    cell = nbformat.v4.new_markdown_cell(text)
    if tags:
        cell.metadata["tags"] = list(tags)
    return json.loads(json.dumps(cell))


def _caption_cells(cells) -> list[str]:
    return ["".join(c["source"]) for c in cells
            if lesson_forms.CAPTION_TAG in c["metadata"].get("tags", [])]


@pytest.mark.parametrize("path", LESSONS, ids=LESSON_IDS)
def test_each_figure_is_followed_by_its_caption_numbered_by_chapter(path):
    """JupyterLab shows no caption for a figure drawn by code: each figure cell is followed by
    a Markdown caption cell, "**Fig. <chapter>.<n>** ...", in order, and the caption is kept
    nowhere else (the book's extension moves it into the metadata when it reads the lesson)."""
    cells = read(path).cells
    label = lesson_forms.chapter_label(path.stem)
    figures = [i for i, c in enumerate(cells)
               if c.cell_type == "code" and "figure" in c.metadata.get("mystnb", {})]
    assert figures, f"{path.name} draws no figure"
    for number, index in enumerate(figures, start=1):
        caption = cells[index + 1]
        assert lesson_forms.CAPTION_TAG in caption.metadata.get("tags", []), (
            f"{path.name}: figure {number} has no caption cell after it: {FIX}")
        assert caption.source.startswith(f"**Fig. {label}.{number}** ")
        assert len(lesson_forms.caption_text(caption)) > 40, "a caption says what to see"
        assert "caption" not in cells[index].metadata.mystnb.figure
    tagged = [c for c in cells if lesson_forms.CAPTION_TAG in c.metadata.get("tags", [])]
    assert len(tagged) == len(figures)


def test_a_caption_moves_out_of_the_metadata_is_renumbered_and_goes_back_for_the_book():
    cells = [_markdown("# Chapter"), _figure_cell("fig-a", "The first $x_t$ figure."),
             _markdown("Text between."), _figure_cell("fig-b"),
             _markdown("**Fig. 4.7** The second, numbered wrong.", [lesson_forms.CAPTION_TAG])]
    once = lesson_forms.caption_figures(json.loads(json.dumps(cells)), "04_lstm")
    assert _caption_cells(once) == ["**Fig. 4.1** The first $x_t$ figure.",
                                    "**Fig. 4.2** The second, numbered wrong."]
    assert [c.get("id") for c in once] == [cells[0]["id"], "fig-a", "fig-a-caption",
                                           cells[2]["id"], "fig-b", cells[4]["id"]]
    assert "caption" not in once[1]["metadata"]["mystnb"]["figure"]
    assert lesson_forms.caption_figures(json.loads(json.dumps(once)), "04_lstm") == once
    nbformat.validate(nbformat.from_dict({**nbformat.v4.new_notebook(), "cells": once}))
    # a figure inserted first renumbers the others
    shifted = lesson_forms.caption_figures([_figure_cell("fig-new", "New."), *once], "04_lstm")
    assert [t.split("**")[1] for t in _caption_cells(shifted)] == ["Fig. 4.1", "Fig. 4.2",
                                                                   "Fig. 4.3"]
    book = lesson_forms.captions_into_figures(json.loads(json.dumps(once)))
    assert [c["metadata"].get("mystnb", {}).get("figure", {}).get("caption") for c in book] == [
        None, "The first $x_t$ figure.", None, "The second, numbered wrong."]
    assert _caption_cells(book) == []


def test_a_figure_without_caption_or_a_caption_without_figure_is_an_error():
    with pytest.raises(ValueError, match="'fig-a' has no caption"):
        lesson_forms.caption_figures([_figure_cell("fig-a")], "04_lstm")
    with pytest.raises(ValueError, match="must follow a figure cell"):
        lesson_forms.caption_figures(
            [_markdown("Text."), _markdown("**Fig. 4.1** Lost.", [lesson_forms.CAPTION_TAG])],
            "04_lstm")
