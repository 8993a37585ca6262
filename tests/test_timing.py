"""The lesson timings on "Running the course" are measured by ``python -m companion.timing``
and kept in step with the lessons. These tests only read the committed files; they time
nothing."""

import json

from companion import timing

from .lesson_tools import LESSONS, ROOT


def record() -> dict:
    assert timing.JSON_PATH.exists(), "run: python -m companion.timing"
    return json.loads(timing.JSON_PATH.read_text(encoding="utf-8"))


def test_the_timings_list_exactly_the_lessons():
    listed = [lesson["notebook"] for lesson in record()["lessons"]]
    shipped = [path.relative_to(ROOT).as_posix() for path in LESSONS]
    assert listed == shipped, (
        "book/_data/lesson_times.json does not list the lessons in lessons/ "
        f"(it has {listed}, lessons/ has {shipped}): rerun `python -m companion.timing` "
        "and commit book/_data/lesson_times.json and book/_generated/lesson_times.md"
    )


def test_each_timing_is_a_measurement_with_its_machine():
    data = record()
    assert data["generated_by"] == "python -m companion.timing"
    machine = data["machine"]
    for key in ("date", "cpu_count", "cpus_used", "python", "torch", "numpy"):
        assert machine.get(key), f"machine info lacks {key}"
    assert machine["python"].startswith("3.11.")
    for lesson in data["lessons"]:
        assert lesson["runs"] and all(seconds > 0 for seconds in lesson["runs"]), lesson
        assert 0 < lesson["seconds"] < data["timeout_per_cell_s"] * max(1, lesson["code_cells"])
    total = sum(lesson["seconds"] for lesson in data["lessons"])
    assert abs(data["total_seconds"] - total) < 0.11


def test_the_included_table_is_rendered_from_the_timings():
    generated = timing.MARKDOWN_PATH.read_text(encoding="utf-8")
    assert generated == timing.render_markdown(record()), (
        "book/_generated/lesson_times.md was edited by hand or is stale: "
        "rerun `python -m companion.timing`"
    )


def test_running_the_course_includes_the_table():
    page = (ROOT / "book" / "running.md").read_text(encoding="utf-8")
    assert "```{include} _generated/lesson_times.md" in page
    assert "python -m companion.timing" in page
    assert "book/running" in (ROOT / "_toc.yml").read_text(encoding="utf-8")


def test_measured_seconds_reads_each_lesson_and_tolerates_a_missing_file(tmp_path):
    """The build and the test scheduler order lessons by these (longest first)."""
    seconds = timing.measured_seconds()
    assert sorted(seconds) == sorted(path.stem for path in LESSONS)
    assert all(value > 0 for value in seconds.values())
    assert timing.measured_seconds(tmp_path / "missing.json") == {}
    (tmp_path / "bad.json").write_text('{"lessons": [{"seconds": 1}]}')
    assert timing.measured_seconds(tmp_path / "bad.json") == {}


def test_importing_the_timing_module_skips_the_iri_grammar():
    import subprocess
    import sys

    code = "import sys, companion.timing; print(sys.modules.get('rfc3987_syntax', 'absent'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "None"


def test_the_introduction_promises_what_the_timings_show():
    """book/intro.md: "Each lesson runs top to bottom in under a minute on a two-core laptop"."""
    intro = " ".join((ROOT / "book" / "intro.md").read_text(encoding="utf-8").split())
    assert "lesson runs top to bottom in under a minute on a two-core" in intro
    assert record()["machine"]["cpu_count"] == 2
    assert max(row["seconds"] for row in record()["lessons"]) < 60
