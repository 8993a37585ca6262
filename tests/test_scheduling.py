"""How ``tests/conftest.py`` cuts the suite into units of work for pytest-xdist."""

from types import SimpleNamespace

import pytest

from .conftest import _check_expensive_fixtures_stay_in_one_unit, cost_hint, work_unit


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
