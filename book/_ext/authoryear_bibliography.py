"""A pybtex style whose bibliography labels match the author–year citations in the text.

With sphinxcontrib-bibtex's ``author_year`` reference style, the text cites
"Hochreiter and Schmidhuber (1997)", but the stock styles label the list "[1]", "[2]"...
This style keeps pybtex's ``plain`` formatting and sorting and labels each entry
"Hochreiter and Schmidhuber, 1997", "Pascanu et al., 2013".
"""

import codecs

import latexcodec  # noqa: F401  (registers the "ulatex" codec)
from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _plain(latex: str) -> str:
    return codecs.decode(latex, "ulatex").replace("{", "").replace("}", "")


def author_year(entry) -> tuple[str, str]:
    """``("Hochreiter and Schmidhuber", "1997")``, ``("Pascanu et al.", "2013")``: who and when,
    as the list's labels and the lessons' citations (``book/_ext/lesson_forms.py``) write them."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain(" ".join(person.last_names)) for person in people]
    if len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return who, entry.fields.get("year", "n.d.")


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield ", ".join(author_year(entry))


class AuthorYearStyle(PlainStyle):
    default_label_style = AuthorYearLabels


register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
