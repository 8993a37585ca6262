"""``companion.quick_imports``: jsonschema's IRI grammar skipped, notebooks still validated."""

import subprocess
import sys

from .lesson_tools import ROOT

PROBE = """
import sys
from companion.quick_imports import skip_the_iri_grammar
skip_the_iri_grammar()
import jsonschema, nbformat
nb = nbformat.read("lessons/00_warmup.ipynb", as_version=4)
nbformat.validate(nb)
broken = nbformat.from_dict({**nb, "cells": [{"cell_type": "code", "source": 42}]})
try:
    nbformat.validate(broken)
except nbformat.ValidationError:
    print("invalid notebook refused")
print("rfc3987_syntax:", sys.modules["rfc3987_syntax"])
"""


def test_notebooks_are_still_validated_without_the_iri_grammar():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.splitlines() == ["invalid notebook refused", "rfc3987_syntax: None"]
