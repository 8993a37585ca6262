"""Execute the lessons a build reads in parallel, afresh, before Sphinx reads them.

MyST-NB executes each notebook while Sphinx reads it, one after another, and Jupyter Book 1.x
offers no parallel build. So this extension runs, on ``env-before-read-docs``:

1. it empties the build's jupyter-cache (``_build/.jupyter_cache``): no output of an earlier
   build can be served, so every build still executes every lesson it reads from scratch;
2. it executes those notebooks in worker processes, one per core (at most ``MAX_WORKERS``),
   longest first, each exactly as MyST-NB would: in its own folder, with the configured
   timeout, errors not allowed (``jupyter_cache.executors.utils.single_nb_execution``);
3. it joins each cell's consecutive stream outputs and resolves their carriage returns
   (nbconvert's ``CoalesceStreamsPreprocessor``), so that a progress bar shows its last state,
   as in JupyterLab, instead of one line per update, and drops a stderr output of nothing but
   whitespace (a bar's closing newline flushed after later prints: an empty box on the page);
4. it stores each executed notebook in that cache, in the form in which Sphinx reads the
   lesson (``lesson_forms.book_form``: the cache's key covers the code cells' metadata, where
   the book's figure captions go).

MyST-NB, in ``cache`` mode (``_config.yml``), then finds each lesson's outputs in the cache
instead of running it again. A lesson that failed here is not stored, so MyST-NB runs it once
more itself and reports its error and traceback as usual: a broken lesson still fails the build.

5. Once every document is read (``env-updated``), it writes each lesson it executed, with its
   outputs, to ``_build/jupyter_execute``. MyST-NB 1.4 writes there the notebook it *read*: on
   a cache hit the outputs go into a merged copy it renders from, so its file has none. The
   PDF (``book/make_pdf.py``) is made from those files, and the solved-lesson tests compare
   their outputs with them.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from build_stamp import notebook_docnames
from lesson_forms import book_form
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
MAX_WORKERS = 4


def execute_notebook(path: str, timeout: int | None, allow_errors: bool) -> dict:
    """Run one notebook in a fresh kernel; return it executed (as JSON) or its error."""
    from companion.quick_imports import skip_the_iri_grammar

    skip_the_iri_grammar()  # 2.5 s saved in each worker (see that module)
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True)
    if result.err is not None:
        return {"path": path, "error": type(result.err).__name__, "seconds": result.time}
    # A progress bar (tqdm) redraws its line with "\r", one stream message per update: joined
    # and resolved as JupyterLab shows them, they are its final line, not one line per update.
    executed, _ = CoalesceStreamsPreprocessor().preprocess(result.nb, {})
    for cell in executed.cells:  # its closing newline, flushed after later prints, alone
        cell.outputs = [output for output in cell.get("outputs", [])  # would be an empty box
                        if not (output.output_type == "stream" and output.name == "stderr"
                                and not output.text.strip())]
    return {"path": path, "notebook": nbformat.writes(executed), "seconds": result.time}


def _longest_first(paths: list[str]) -> list[str]:
    """The notebooks ordered by their last measured run time
    (``book/_data/lesson_times.json``), longest first (unknown last)."""
    from companion.timing import measured_seconds

    times = measured_seconds()
    return sorted(paths, key=lambda path: -times.get(Path(path).stem, 0.0))


def _notebooks_to_read(app, env, docnames) -> list[str]:
    return [str(Path(env.doc2path(docname)).resolve())
            for docname in notebook_docnames(env, docnames)]


def _execute_in_parallel(app, env, docnames):
    config = env.mystnb_config
    if config.execution_mode != "cache":
        return
    cache_path = Path(config.execution_cache_path)
    shutil.rmtree(cache_path, ignore_errors=True)  # nothing from an earlier build is reused
    app.jupyter_cache_emptied = True
    notebooks = _longest_first(_notebooks_to_read(app, env, docnames))
    if not notebooks:
        return

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from nbformat import reads

    cache = get_cache(str(cache_path))
    app.gated_memory_executed = {}  # docname -> the executed notebook (JSON)
    workers = max(1, min(len(notebooks), os.cpu_count() or 1, MAX_WORKERS))
    LOGGER.info(f"executing {len(notebooks)} notebooks, {workers} at a time")
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(execute_notebook, path, config.execution_timeout,
                               config.execution_allow_errors) for path in notebooks]
        for future in futures:
            result = future.result()
            name = os.path.relpath(result["path"], app.srcdir)
            if "error" in result:
                LOGGER.info(f"{name}: {result['error']} after {result['seconds']:.1f} s; "
                            "MyST-NB runs it again to report the error")
                continue
            cache.cache_notebook_bundle(
                CacheBundleIn(book_form(reads(result["notebook"], as_version=4)), result["path"],
                              data={"execution_seconds": result["seconds"]}),
                check_validity=False, overwrite=True)
            app.gated_memory_executed[env.path2doc(result["path"])] = result["notebook"]
            LOGGER.info(f"{name}: executed in {result['seconds']:.1f} s")
    app.gated_memory_execution_seconds = round(time.perf_counter() - start, 1)
    LOGGER.info(f"executed {len(notebooks)} notebooks in {app.gated_memory_execution_seconds} s")


def _write_executed_notebooks(app, env):
    """Replace MyST-NB's copy of each lesson executed here, in ``jupyter_execute``, by the
    executed notebook (see step 4 of the module's docstring)."""
    folder = Path(env.mystnb_config.output_folder)
    for docname, notebook in getattr(app, "gated_memory_executed", {}).items():
        target = folder / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(notebook, encoding="utf-8")
    return []


def _record_misses(app, exception):
    """The notebooks MyST-NB had to execute itself while reading (it adds a project record
    for each; this module adds none): a failed lesson, or a cache key that did not match."""
    if getattr(app, "jupyter_cache_emptied", False):
        from jupyter_cache import get_cache

        cache = get_cache(app.env.mystnb_config.execution_cache_path)
        app.notebooks_executed_while_reading = sorted(
            os.path.relpath(record.uri, app.srcdir) for record in cache.list_project_records())


def setup(app):
    app.connect("env-before-read-docs", _execute_in_parallel)
    app.connect("env-updated", _write_executed_notebooks)
    app.connect("build-finished", _record_misses)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
