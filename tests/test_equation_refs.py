"""Equation references cannot drift: every "(4.6)", "eq. (4.6)", "eqs. (4.7)-(4.13)" or
"(eq. 4.8)" in the lessons, the book's pages and the companion (docstrings, exercise
definitions, hints, solutions) names an equation that its chapter's lesson tags, and no equation
is tagged twice.

Tags are found by ``TAG_PATTERNS``; today the lessons write ``\\tag{4.6}`` inside display math.
The MyST label forms ``(eq-4-6)=`` and ``:label: eq-4-6``, and references written as the role
``{eq}`eq-4-6```, are recognised too, should the lessons move to them; for another syntax, add
a pattern whose first group gives the number as ``"4.6"`` or ``"4-6"`` (or ``"W.3"``).

Equation numbers are ``N.M`` with ``N >= 1`` a chapter number or ``W`` (the warm-up) and
``M >= 1``. A parenthesised decimal that cannot be one, such as ``(1.0)`` or ``(0.5)``, is a
value, and so is a call's argument, ``f(1.8)`` (an opening parenthesis right after a name).
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(?:\d+|W)\.\d+"
DASH = r"\s*(?:-|–|—|--)\s*"

# Each pattern's group 1 is an equation number "N.M" (after ``_normalise``).
TAG_PATTERNS = [
    re.compile(r"\\tag\*?\{(" + NUMBER + r")\}"),
    # MyST label forms, should the lessons move to them: (eq-4-6)= or :label: eq-4-6
    re.compile(r"^\((?:eq-)((?:\d+|W)-\d+)\)=", re.M),
    re.compile(r":label:\s*eq-((?:\d+|W)-\d+)\b"),
]

# A reference: "eq. 4.8", "eqs. (4.1)-(4.6)", "eqs. 4.1-4.6", "(4.6)", "(4.7)–(4.13)".
REFERENCE = re.compile(
    r"\beqs?\.\s*\(?(?P<a>" + NUMBER + r")\)?(?:" + DASH + r"\(?(?P<b>" + NUMBER + r")\)?)?"
    r"|(?<![\w)\]])\((?P<c>" + NUMBER + r")\)(?:" + DASH + r"\((?P<d>" + NUMBER + r")\))?"
)


# A MyST equation role, should the lessons move to labels: {eq}`eq-4-6` or {eq}`text <eq-4-6>`.
EQ_ROLE = re.compile(r"\{eq\}`(?:[^`<]*<)?eq-(?P<n>(?:\d+|W)-\d+)>?`")


@dataclass(frozen=True)
class Reference:
    where: str
    first: str
    last: str | None
    text: str


def _normalise(number: str) -> str:
    return number.replace("-", ".")


def find_tags(text: str) -> list[str]:
    """Every equation tag in ``text``, in order (repeats kept, to detect duplicates)."""
    found = []
    for pattern in TAG_PATTERNS:
        found += [(m.start(), _normalise(m.group(1))) for m in pattern.finditer(text)]
    return [number for _, number in sorted(found)]


def _is_equation_number(number: str) -> bool:
    major, minor = number.split(".")
    return (major == "W" or int(major) >= 1) and int(minor) >= 1


def find_references(text: str, where: str) -> list[Reference]:
    """Every equation reference in ``text`` (tags themselves are not references)."""
    without_tags = text
    for pattern in TAG_PATTERNS:
        without_tags = pattern.sub(" ", without_tags)
    refs = []
    for match in REFERENCE.finditer(without_tags):
        first = match.group("a") or match.group("c")
        last = match.group("b") or match.group("d")
        if not _is_equation_number(first):
            continue
        refs.append(Reference(where, first, last, match.group(0)))
    for match in EQ_ROLE.finditer(without_tags):
        refs.append(Reference(where, _normalise(match.group("n")), None, match.group(0)))
    return refs


def chapter(number: str) -> str:
    return number.split(".")[0]


def check_references(refs: list[Reference], tags: set[str]) -> list[str]:
    """Problems with ``refs`` given the set of tagged equation numbers (empty list: none)."""
    problems = []
    for ref in refs:
        for number in filter(None, (ref.first, ref.last)):
            if number not in tags:
                problems.append(f"{ref.where}: {ref.text!r} names ({number}), which no lesson "
                                "tags")
        if ref.last is not None:
            if chapter(ref.first) != chapter(ref.last):
                problems.append(f"{ref.where}: {ref.text!r} spans two chapters")
            elif int(ref.first.split(".")[1]) >= int(ref.last.split(".")[1]):
                problems.append(f"{ref.where}: {ref.text!r} is not an increasing range")
    return problems


def _lesson_chapter(path: Path) -> str:
    number = path.name.split("_")[0]
    return "W" if number == "00" else str(int(number))


def _figure_text(cell: dict) -> str:
    """A figure cell's alt text, which may name the equations the figure draws (its caption
    is the Markdown cell after it, read with the other cells)."""
    return cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")


def lesson_sources() -> dict[Path, str]:
    sources = {}
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        sources[path] = "\n".join("".join(cell["source"]) + "\n" + _figure_text(cell)
                                   for cell in notebook["cells"])
    return sources


def all_tags() -> dict[Path, list[str]]:
    return {path: find_tags(text) for path, text in lesson_sources().items()}


def referring_texts() -> dict[str, str]:
    """Every text that may refer to an equation, by a readable location."""
    texts = {str(path.relative_to(ROOT)): text for path, text in lesson_sources().items()}
    for path in sorted((ROOT / "book").glob("*.md")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "companion").rglob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


# --- the finder itself, on small synthetic texts ------------------------------------------------

SYNTHETIC_LESSON = r"""
$$ a = b \tag{4.1} $$
$$ c = d \tag{4.2} $$
$$ e = f \tag{4.3} $$
"""


def test_finder_reads_tags_and_every_reference_form():
    assert find_tags(SYNTHETIC_LESSON) == ["4.1", "4.2", "4.3"]
    assert find_tags("(eq-5-2)=\n$$x$$\n:label: eq-W-3") == ["5.2", "W.3"]
    text = ("by (4.1), eq. (4.2), eqs. (4.1)-(4.3), (4.1)–(4.3), '''(eqs. 4.1-4.2)''', "
            "(eq. 4.3), and sigmoid(1.0), f(1.8), (0.5) and (1.0) are values, as is (2.25 + x)")
    refs = [(r.first, r.last) for r in find_references(text, "synthetic")]
    assert refs == [("4.1", None), ("4.2", None), ("4.1", "4.3"), ("4.1", "4.3"),
                    ("4.1", "4.2"), ("4.3", None)]


def test_finder_reads_myst_equation_roles():
    refs = find_references("see {eq}`eq-4-2` and {eq}`the update <eq-W-3>`", "roles")
    assert [r.first for r in refs] == ["4.2", "W.3"]


def test_checker_fails_on_a_wrong_reference():
    tags = set(find_tags(SYNTHETIC_LESSON))
    good = find_references("see (4.2) and eqs. (4.1)-(4.3)", "good")
    assert check_references(good, tags) == []
    wrong = find_references("see (4.4), eqs. (4.3)-(4.1) and (5.1)-(4.2)", "wrong")
    problems = check_references(wrong, tags)
    assert any("(4.4)" in p and "no lesson tags" in p for p in problems)
    assert any("not an increasing range" in p for p in problems)
    assert any("spans two chapters" in p for p in problems)
    assert any("(5.1)" in p for p in problems)


def test_figure_alt_texts_are_read():
    cell = {"source": ["x"], "metadata": {"mystnb": {"figure": {"name": "fig-cell"},
                                                     "image": {"alt": "eqs. (4.1)-(4.6)"}}}}
    assert [r.first for r in find_references(_figure_text(cell), "alt")] == ["4.1"]


def test_references_in_tags_are_not_counted():
    assert find_references(r"$$ x \tag{4.1} $$", "tag only") == []


# --- the course ---------------------------------------------------------------------------------

def test_each_lesson_tags_its_own_chapter_and_each_tag_once():
    seen: dict[str, Path] = {}
    for path, tags in all_tags().items():
        assert tags, f"{path.name} tags no equation"
        for number in tags:
            assert chapter(number) == _lesson_chapter(path), (
                f"{path.name} tags ({number}), an equation number of another chapter")
            assert number not in seen, (
                f"({number}) is tagged twice: in {seen[number].name} and {path.name}")
            seen[number] = path


def test_each_chapter_numbers_its_equations_without_gaps():
    for path, tags in all_tags().items():
        minors = sorted(int(number.split(".")[1]) for number in tags)
        assert minors == list(range(1, len(minors) + 1)), (path.name, minors)


@pytest.mark.parametrize("where", sorted(referring_texts()))
def test_every_equation_reference_names_a_tagged_equation(where):
    tags = {number for numbers in all_tags().values() for number in numbers}
    text = referring_texts()[where]
    problems = check_references(find_references(text, where), tags)
    assert not problems, "\n".join(problems)


# --- each exercise cites the same equations everywhere -----------------------------------------

def numbers_named(refs: list[Reference]) -> set[str]:
    """The equation numbers that ``refs`` name, ranges expanded."""
    named = set()
    for ref in refs:
        if ref.last is None or chapter(ref.first) != chapter(ref.last):
            named |= {ref.first} | ({ref.last} if ref.last else set())
            continue
        start, stop = (int(n.split(".")[1]) for n in (ref.first, ref.last))
        named |= {f"{chapter(ref.first)}.{minor}" for minor in range(start, stop + 1)}
    return named


def _stub_docstrings() -> dict[str, str]:
    """The docstring of each exercise stub in the lessons, by exercise id."""
    stubs = {}
    stub = re.compile(r"^def (\w+)\(.*?\):\n\s+(?:'''|\"\"\")(.*?)(?:'''|\"\"\")", re.M | re.S)
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and "raise NotImplementedError" in source:
                stubs.update({m.group(1): m.group(2) for m in stub.finditer(source)})
    return stubs


def test_finder_compares_an_exercise_with_its_stub():
    stub = numbers_named(find_references("Backward pass (eqs. 5.9-5.13)", "stub"))
    assert stub == {"5.9", "5.10", "5.11", "5.12", "5.13"}
    assert not stub <= numbers_named(find_references("eqs. (5.8)-(5.12)", "definition"))
    assert stub <= numbers_named(find_references("eqs. (5.8)-(5.13)", "definition"))
    assert numbers_named(find_references("(W.1), (4.4)", "list")) == {"W.1", "4.4"}


def test_each_exercise_cites_the_equations_its_lesson_stub_cites():
    """The exercise's ``equation`` (shown when a check fails) cites at least the equations the
    lesson's stub cites, and its reference solution's docstring (shown in the book) cites no
    equation outside those two: an off-by-one range or a neighbouring equation fails."""
    from companion import exercises

    stubs = _stub_docstrings()
    checked = 0
    for exercise_id in exercises.ids():
        stub_numbers = numbers_named(find_references(stubs.get(exercise_id, ""), "stub"))
        if not stub_numbers:
            continue
        exercise = exercises.get(exercise_id)
        equation = numbers_named(find_references(exercise.equation, "equation"))
        assert stub_numbers <= equation, (
            f"{exercise_id}: its equation {exercise.equation!r} misses "
            f"{sorted(stub_numbers - equation)}, which the lesson's stub cites")
        docstring = numbers_named(find_references(exercise.reference.__doc__ or "", "doc"))
        assert docstring <= stub_numbers | equation, (
            f"{exercise_id}: the reference solution's docstring cites "
            f"{sorted(docstring - stub_numbers - equation)}, which neither the lesson's stub "
            "nor the exercise's equation cites")
        checked += 1
    assert checked >= 10
