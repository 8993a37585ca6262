"""How ``tests/conftest.py`` cuts the suite into units of work for pytest-xdist, which tests
wait for the book, and how an unfinished build is stopped."""

import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest

from .conftest import (
    _check_expensive_fixtures_stay_in_one_unit,
    _is_slow,
    _needs_book,
    _stop_build,
    cost_hint,
    work_unit,
)


def item(nodeid, *fixtures):
    return SimpleNamespace(nodeid=nodeid, fixturenames=list(fixtures))


def test_a_module_a_class_or_one_kernel_test_is_a_unit():
    assert work_unit("tests/test_lstm.py::test_forward[2]") == "tests/test_lstm.py"
    assert (work_unit("tests/test_grader.py::TestOneClassGradedAtOnce::test_forgeries_never_pass")
            == "tests/test_grader.py::TestOneClassGradedAtOnce")
    solved = ("tests/test_lessons.py::"
              "test_solved_lesson_passes_every_check_and_reproduces_the_book[03_vanishing]")
    assert work_unit(solved) == solved
    assert cost_hint(solved) > cost_hint("tests/test_lstm.py")


def test_an_expensive_fixture_used_in_two_units_is_refused():
    _check_expensive_fixtures_stay_in_one_unit(
        [item("tests/test_pdf.py::test_a", "pdf"), item("tests/test_pdf.py::test_b", "pdf"),
         item("tests/test_lstm.py::test_c")])
    with pytest.raises(pytest.UsageError, match=r"'pdf': \['tests/test_other.py'"):
        _check_expensive_fixtures_stay_in_one_unit(
            [item("tests/test_pdf.py::test_a", "pdf"), item("tests/test_other.py::test_b", "pdf")])


def test_only_tests_of_the_book_start_a_build_and_jupyterlab_ones_are_slow_too():
    book = item("tests/test_browser.py::test_x", "book_site", "site", "built_book")
    lab = item("tests/test_lab.py::test_x", "lab_tab", "lab", "browser", "playwright_driver")
    quick = item("tests/test_lstm.py::test_x", "tmp_path")
    assert [_needs_book(i) for i in (book, lab, quick)] == [True, False, False]
    assert [_is_slow(i) for i in (book, lab, quick)] == [True, True, False]


def test_stopping_a_build_stops_the_workers_it_started():
    """The build runs lessons in worker processes; killing only its main process would leave
    them running (and using the CPU) after the tests end."""
    started = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, time\n"
         "worker = subprocess.Popen(['sleep', '60'])\nprint(worker.pid, flush=True)\n"
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    worker = int(started.stdout.readline())
    _stop_build(started)
    deadline = time.monotonic() + 10
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(worker), "the build's worker outlived it"
    assert started.returncode is not None


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
