"""The grader against inputs and notebooks an adversarial review sent it: each one gets its
own row, and nothing a notebook does stops the run, hides a classmate or forges a verdict."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from companion.grading import run, worker
from companion.grading.notebooks import Submission, collect

from .grading_tools import grade, warmup, write

WARMUP = json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [],
                     "metadata": {"companion": {"lesson": "00_warmup"}}})


def test_a_number_json_refuses_and_a_byte_order_mark_are_read_without_a_crash(tmp_path):
    (tmp_path / "bigint.ipynb").write_text('{"nbformat": ' + "1" * 5000 + ', "cells": []}')
    (tmp_path / "bom.ipynb").write_bytes(b"\xef\xbb\xbf" + WARMUP.encode())
    found = {s.name.rsplit("/", 1)[-1]: s for s in collect([str(tmp_path)])}
    assert "invalid JSON" in found["bigint.ipynb"].problem
    assert found["bom.ipynb"].problem == "" and found["bom.ipynb"].lesson == "00_warmup"


def test_a_link_to_a_classmate_gets_its_own_row_and_the_classmate_keeps_theirs(tmp_path):
    (tmp_path / "zzz_victim.ipynb").write_text(WARMUP)
    os.symlink("zzz_victim.ipynb", tmp_path / "aaa_thief.ipynb")
    (tmp_path / "folder.ipynb").mkdir()
    found = {s.name.rsplit("/", 1)[-1]: s for s in collect([str(tmp_path)])}
    assert set(found) == {"aaa_thief.ipynb", "zzz_victim.ipynb", "folder.ipynb"}
    assert "symbolic link" in found["aaa_thief.ipynb"].problem
    assert found["zzz_victim.ipynb"].problem == ""
    assert found["folder.ipynb"].problem == "not a regular file"


def test_a_message_utf8_cannot_encode_is_escaped():
    row = run.row("nb.ipynb", "sigmoid", "failed", "ValueError: bad \ud800 text")
    assert row.message == "ValueError: bad \\ud800 text"
    row.message.encode("utf-8")  # every gradebook can write it


def test_a_gradebook_that_cannot_be_written_does_not_stop_the_run(capsys):
    def failing(reports):
        raise OSError("disk full")

    submissions = [Submission(f"n{k}.ipynb", problem="not a notebook") for k in range(3)]
    reports = run.grade_all(submissions, run.Options(), on_report=failing)
    assert [r.notebook for r in reports] == ["n0.ipynb", "n1.ipynb", "n2.ipynb"]
    assert "could not be written yet" in capsys.readouterr().err


def _report_file(tmp_path, lines):
    path = tmp_path / "report"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def test_only_one_signed_report_from_a_worker_that_exited_normally_counts(tmp_path):
    key, payload = "k" * 64, json.dumps({"rows": [], "notes": []})
    genuine = f"{worker.REPORT_PREFIX} {worker.sign(key, payload)} {payload}"
    unsigned = f"{worker.REPORT_PREFIX} {'0' * 64} {payload}"
    assert run._read_report(_report_file(tmp_path, [unsigned, genuine]), key, 0)[0] == {
        "rows": [], "notes": []}
    result, problem = run._read_report(_report_file(tmp_path, [genuine]), key, -9)
    assert result is None and "died (exit code -9)" in problem  # killed: no verdict
    result, problem = run._read_report(_report_file(tmp_path, [genuine, genuine]), key, 0)
    assert result is None and "2 signed reports" in problem  # one of them forged


CHAIN = textwrap.dedent("""\
    import os, sys, time
    beat = sys.argv[1]
    while True:  # a chain: each generation forks the next and dies
        if os.fork():
            os._exit(0)
        with open(beat, "w") as file:
            file.write(str(time.time()))
        time.sleep(0.005)
""")


@pytest.mark.slow
def test_a_process_that_forks_as_it_dies_is_killed_to_the_last_generation(tmp_path):
    beat = tmp_path / "beat"
    code = textwrap.dedent(f"""\
        import subprocess, sys, time
        from companion.grading import processes
        processes.become_subreaper()
        subprocess.Popen([sys.executable, "-c", {CHAIN!r}, {str(beat)!r}])
        time.sleep(1.0)
        processes.kill_descendants()
        import psutil
        print(len(psutil.Process().children(recursive=True)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "0", done.stderr
    last = beat.read_text()
    time.sleep(0.5)
    assert beat.read_text() == last  # no generation is still writing


STUBBORN = ("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "while True:\n    try:\n        time.sleep(0.5)\n    except BaseException:\n"
            "        pass")


@pytest.mark.slow
def test_a_cell_that_ignores_interrupts_costs_only_itself(tmp_path):
    """The kernel is stopped and restarted after its probe times out (the probe used to
    probe itself, forever); the answers before and after the cell are graded."""
    folder = tmp_path / "class"
    write(folder, {"stubborn.ipynb": warmup(after={"sigmoid": STUBBORN})})
    started = time.monotonic()
    process = grade(folder, "--timeout", 3, "--json", tmp_path / "grades.json", cwd=tmp_path)
    rows = json.loads((tmp_path / "grades.json").read_text())
    assert [r["status"] for r in rows] == ["passed"] * 3, process.stderr[-2000:]
    assert time.monotonic() - started < 120


def test_a_gradebook_is_created_as_open_would_create_it(tmp_path):
    from companion.grading.output import write_atomically

    write_atomically(tmp_path / "grades.json", "[]\n")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (tmp_path / "grades.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_each_notebook_gets_its_own_random_cases(monkeypatch):
    seeds = []

    def record(submission, options, run_dir, seed):
        seeds.append(seed)
        return run.Report(submission.name)

    monkeypatch.setattr(run, "grade_submission", record)
    run.grade_all([Submission(f"n{k}.ipynb") for k in range(4)], run.Options())
    assert len(set(seeds)) == 4
