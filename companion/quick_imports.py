"""Start Jupyter's Python tools without a 2.5-second detour.

nbformat and nbclient import jsonschema. When ``rfc3987_syntax`` is installed (Jupyter's server
pulls it in, through ``jsonschema[format-nongpl]``), jsonschema imports it to check the ``iri``
string format, and that import compiles a grammar: about 2.5 s on a 2-core machine, in every
process that reads or runs a notebook. No notebook schema uses that format.

:func:`skip_the_iri_grammar` marks the module missing, so jsonschema leaves that one format
unchecked. Call it before anything imports jsonschema: the grader's worker, the book build's
lesson workers and the test processes do. This module imports nothing itself.
"""

import sys


def skip_the_iri_grammar() -> None:
    """Make ``import rfc3987_syntax`` fail in this process (unless it is already imported)."""
    sys.modules.setdefault("rfc3987_syntax", None)
