"""Stamp each build with what it was built from and how it went, so that the test suite can
reuse the README's strict build instead of building (and executing every lesson) again.

At the end of a build this writes ``<build dir>/build-stamp.json``::

    {"sources": <sha256 of every source file>, "warnings": n, "failed": bool,
     "nitpicky": bool, "execution": "cache", "executed_afresh": ["lessons/00_warmup", ...]}

``executed_afresh`` lists the notebooks this build read and executed from scratch: every
notebook it read when MyST-NB runs in ``force`` mode, or in ``cache`` mode when
``parallel_execution.py`` emptied the cache before reading (it always does).
``executed_while_reading`` lists those that MyST-NB executed itself, one at a time, because the
parallel run did not leave them in the cache (normally none).

``tests/conftest.py`` reuses ``_build`` only when the stamp says the build had no warning and
no error, was nitpicky and executed every lesson afresh, and its ``sources`` equal the hash of
the tree as it is now (any edit to a lesson, a page, the configuration or the companion
package changes the hash). Otherwise the tests build the book themselves.
"""

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_GLOBS = (
    "_config.yml", "_toc.yml", "references.bib", "requirements.txt",
    "book/**/*", "lessons/*.ipynb", "companion/**/*.py", "companion/data/*",
)


def sources_hash(root: Path = ROOT) -> str:
    """sha256 over the relative path and bytes of every source file of the book, in order."""
    digest = hashlib.sha256()
    files = sorted({path for pattern in SOURCE_GLOBS for path in root.glob(pattern)
                    if path.is_file() and "__pycache__" not in path.parts})
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def read_stamp(build_dir: Path) -> dict | None:
    """The stamp ``<build_dir>/build-stamp.json`` as a dict; ``None`` when it is missing or
    unreadable. Whether the build is fit for a purpose is the reader's call."""
    try:
        stamp = json.loads((build_dir / "build-stamp.json").read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def notebook_docnames(env, docnames) -> list[str]:
    """The docnames whose source is a notebook (the lessons), sorted."""
    return sorted(docname for docname in docnames
                  if Path(env.doc2path(docname)).suffix == ".ipynb")


def _record_notebooks_read(app, env, docnames):
    app.gated_memory_notebooks_read = notebook_docnames(env, docnames)


def _executed_afresh(app) -> list[str]:
    mode = app.config["nb_execution_mode"]
    fresh = mode == "force" or (mode == "cache" and getattr(app, "jupyter_cache_emptied", False))
    return getattr(app, "gated_memory_notebooks_read", []) if fresh else []


def _write_stamp(app, exception):
    stamp = {
        "sources": sources_hash(),
        "warnings": int(getattr(app, "_warncount", 0)),
        "failed": exception is not None,
        "nitpicky": bool(app.config.nitpicky),
        "execution": app.config["nb_execution_mode"],
        "executed_afresh": _executed_afresh(app),
        "executed_while_reading": getattr(app, "notebooks_executed_while_reading", None),
        "lesson_execution_seconds": getattr(app, "gated_memory_execution_seconds", None),
    }
    (Path(app.outdir).parent / "build-stamp.json").write_text(json.dumps(stamp, indent=1))


def setup(app):
    app.connect("env-before-read-docs", _record_notebooks_read)
    app.connect("build-finished", _write_stamp, priority=10000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
