"""Append one CI run's times to a JSON-lines file (``CI_TIMINGS=FILE bash .ci/run``).

Each line: when the run finished (UTC), the commit, the CPUs, and in seconds the whole of
``.ci/run`` (without the developer's subset it times afterwards), the README's first command
(install and build), its second (every test), the lessons' execution inside the build (from
``_build/build-stamp.json``), ``pytest -m "not slow"``, and whether Python wrote its bytecode
caches (``PYTHONDONTWRITEBYTECODE`` unset).
"""

import argparse
import datetime
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    for name in ("--ci", "--install-and-build", "--tests", "--not-slow"):
        parser.add_argument(name, type=int, required=True, help="seconds")
    parser.add_argument("--stamp", type=Path, default=ROOT / "_build" / "build-stamp.json",
                        help="the build's stamp (default _build/build-stamp.json)")
    args = parser.parse_args()
    stamp = json.loads(args.stamp.read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=True).stdout.strip()
    record = {
        "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "commit": commit, "cpus": os.cpu_count(), "ci_seconds": args.ci,
        "install_and_build_seconds": args.install_and_build, "tests_seconds": args.tests,
        "lessons_in_build_seconds": stamp["lesson_execution_seconds"],
        "not_slow_seconds": args.not_slow,
        # PYTHONDONTWRITEBYTECODE=1 (some shells set it) makes every process, each kernel
        # included, compile the companion package and the tests again
        "bytecode_cache": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
    }
    with open(args.file, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    print(f"recorded in {args.file}: {record}")


if __name__ == "__main__":
    main()
