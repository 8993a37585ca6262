"""The repository's contract with a newcomer: the README's two commands are what CI runs,
and every dependency is pinned exactly."""

import os
import re
import subprocess
import sys

from .lesson_tools import ROOT


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```bash\n(.+?)\n\s*```", setup)]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_them_verbatim():
    commands = readme_commands()
    assert len(commands) == 2, commands
    ci_lines = (ROOT / ".ci/run").read_text().splitlines()
    for command in commands:
        assert command.strip() in ci_lines, f"not run verbatim by .ci/run: {command}"


def test_build_command_is_strict():
    build = readme_commands()[0]
    assert "jupyter-book build ." in build
    assert all(flag in build.split() for flag in ["-n", "-W", "--keep-going"])


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line == "-e .":
            continue
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", line), line
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text().splitlines()


def test_jupyter_book_is_version_1():
    from importlib.metadata import version

    assert version("jupyter-book").startswith("1.")


def test_ruff_finds_nothing():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]


CI_RUNS = ROOT / "book" / "_data" / "ci_runs.jsonl"


def _clock(seconds: int) -> str:
    return f"{seconds // 60} min {seconds % 60} s"


def _span(values, form) -> str:
    low, high = form(min(values)), form(max(values))
    return low if low == high else f"{low} to {high}"


LATEST_RUNS = 3  # the README's times are those of the latest recorded runs


def _time_claims() -> tuple[list[str], list[dict]]:
    """What the README must say of the latest recorded fresh-clone runs, and those runs."""
    import json

    recorded = [json.loads(line) for line in CI_RUNS.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    assert recorded, f"{CI_RUNS} records no run"
    runs = recorded[-LATEST_RUNS:]  # the file keeps the older runs, of older commits
    # Runs recorded before the field existed were made with PYTHONDONTWRITEBYTECODE=1.
    caches = {run.get("bytecode_cache", False) for run in runs}
    assert len(caches) == 1, "the latest runs mix runs with and without bytecode caches"
    (with_caches,) = caches
    days = sorted({run["finished"][:10] for run in runs})
    lessons = json.loads((ROOT / "book" / "_data" / "lesson_times.json").read_text())["lessons"]
    return [
        f"in the {len(runs)} latest fresh-clone run{'' if len(runs) == 1 else 's'} recorded in "
        f"`book/_data/ci_runs.jsonl` ({_span(days, str)}), "
        + ("with Python writing its bytecode caches (its default)" if with_caches else
           "with `PYTHONDONTWRITEBYTECODE=1`, so that every process compiled the companion"),
        f"took {_span([r['ci_seconds'] for r in runs], _clock)}, of which `python -m pytest` "
        f"took {_span([r['tests_seconds'] for r in runs], _clock)}, and the install with the "
        f"build {_span([r['install_and_build_seconds'] for r in runs], _clock)}",
        "the build ran the nine lessons, two at a time, in "
        f"{_span([r['lessons_in_build_seconds'] for r in runs], lambda s: f'{s:.0f}')} seconds",
        f"Each lesson ran in {_span([row['seconds'] for row in lessons], lambda s: f'{s:.0f}')} "
        "seconds on its own",
        f"{_span([r['not_slow_seconds'] for r in runs], str)} seconds in the same runs",
    ], runs


def test_the_readme_gives_the_recorded_times_of_fresh_clones():
    """The README's times are those of the runs in book/_data/ci_runs.jsonl (each appended by
    ``CI_TIMINGS=book/_data/ci_runs.jsonl bash .ci/run`` on a fresh clone), and the running
    page's test-suite time is theirs too: no time quoted from a run nobody recorded."""
    claims, runs = _time_claims()
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert [claim for claim in claims if claim not in readme] == []
    page = " ".join((ROOT / "book" / "running.md").read_text(encoding="utf-8").split())
    assert "the fresh-clone runs recorded in `book/_data/ci_runs.jsonl`" in page
    assert max(run["tests_seconds"] for run in runs) < 10 * 60  # "a few minutes"


def test_ci_records_its_times_when_asked(tmp_path):
    import json

    ci = (ROOT / ".ci/run").read_text()
    assert 'python .ci/record_times.py "$CI_TIMINGS"' in ci
    assert 'python -m pytest -m "not slow"' in ci
    stamp, record = tmp_path / "stamp.json", tmp_path / "runs.jsonl"
    stamp.write_text(json.dumps({"lesson_execution_seconds": 61.5}))
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for ci_seconds, no_bytecode in ((400, "1"), (410, "")):
        subprocess.run([sys.executable, str(ROOT / ".ci" / "record_times.py"), str(record),
                        "--ci", str(ci_seconds), "--install-and-build", "150",
                        "--tests", "240", "--not-slow", "25", "--stamp", str(stamp)],
                       check=True, capture_output=True,
                       env={**environment, "PYTHONDONTWRITEBYTECODE": no_bytecode})
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert [run["ci_seconds"] for run in runs] == [400, 410]
    assert [run["bytecode_cache"] for run in runs] == [False, True]
    assert runs[0]["lessons_in_build_seconds"] == 61.5 and runs[0]["tests_seconds"] == 240
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", runs[0]["finished"])
