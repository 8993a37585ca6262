"""The repository's contract with a newcomer: the README's two commands are what CI runs,
and every dependency is pinned exactly."""

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
