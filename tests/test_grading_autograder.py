"""``python -m companion autograder``: a Gradescope autograder folder, run end to end on a
temporary root exactly as Gradescope runs it."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from companion.grading.autograder import CPU_TORCH_INDEX

from .grading_tools import WARMUP_IDS, grader_leftovers, snapshot, warmup, write
from .test_grader import SELF_CONTAINED_SIGMOID_PRIME, assert_gradescope_format


def autograder(*arguments):
    return subprocess.run([sys.executable, "-m", "companion", "autograder", *map(str, arguments)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("made") / "autograder-00"
    process = autograder("00_warmup", "--out", out, "--timeout", 30)
    assert process.returncode == 0, process.stderr
    return out


def test_the_folder_holds_what_gradescope_expects(folder):
    assert {p.name for p in folder.iterdir()} == {
        "setup.sh", "run_autograder", "requirements.txt", "companion"}
    for script in ("setup.sh", "run_autograder"):
        assert os.access(folder / script, os.X_OK)
        assert (folder / script).read_text().startswith("#!/usr/bin/env bash")
    requirements = [line for line in (folder / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements and all("==" in line for line in requirements)
    assert (folder / "companion" / "exercises" / "core.py").is_file()
    assert not list(folder.rglob("__pycache__"))
    assert "--lesson 00_warmup" in (folder / "run_autograder").read_text()


def test_setup_installs_the_cpu_torch_first_then_the_pinned_requirements(folder, tmp_path):
    """Run as Gradescope runs it, with a stand-in Python that records each pip call: torch's
    CPU build comes from PyTorch's CPU index (PyPI's would bring CUDA), then the rest."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    subprocess.run(["bash", str(folder / "setup.sh")], check=True,
                   env={**os.environ, "AUTOGRADER_PYTHON": str(fake)})
    pinned = next(line for line in (folder / "requirements.txt").read_text().splitlines()
                  if line.startswith("torch=="))
    assert calls.read_text().splitlines() == [
        f"-m pip install --no-cache-dir {pinned} --index-url {CPU_TORCH_INDEX}",
        "-m pip install --no-cache-dir -r requirements.txt",
    ]


@pytest.mark.parametrize("arguments, expected", [
    (["99_nope"], "unknown lesson '99_nope'"),
    (["00_warmup"], "is not an empty folder"),
])
def test_bad_autograder_arguments_are_one_line_errors(folder, arguments, expected):
    process = autograder(*arguments, "--out", folder)
    assert process.returncode == 2 and process.stdout == ""
    assert expected in process.stderr and len(process.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_autograder_grades_a_submission_end_to_end(folder, tmp_path):
    root = tmp_path / "autograder"
    shutil.copytree(folder, root / "source")
    wrong = {"sigmoid": "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))",
             "sigmoid_prime": SELF_CONTAINED_SIGMOID_PRIME}
    write(root / "submission", {"my lesson.ipynb": warmup(wrong)})
    before = snapshot(root / "submission")
    process = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
        timeout=900, cwd=tmp_path,
        env={**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable,
             "PYTHONPATH": ""},
    )
    assert process.returncode == 0, process.stdout + process.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert_gradescope_format(results)
    assert [test["name"] for test in results["tests"]] == WARMUP_IDS
    assert [test["status"] for test in results["tests"]] == ["failed", "passed", "passed"]
    assert results["score"] == 2
    assert "exp(-z) overflows" in results["tests"][0]["output"]
    assert snapshot(root / "submission") == before
    assert sorted(os.listdir(tmp_path)) == ["autograder"]
    assert grader_leftovers() == ([], [])
