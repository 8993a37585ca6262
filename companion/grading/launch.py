"""Start a kernel under resource limits: ``python -m companion.grading.launch [--memory MB]
[--nproc N] [--fsize MB] -- COMMAND ...`` sets the limits, then replaces itself by COMMAND.

``--memory`` caps the address space (``RLIMIT_AS``): an allocation past it raises
``MemoryError`` in the kernel. ``--nproc`` caps the processes and threads of the user
(``RLIMIT_NPROC``), ``--fsize`` the size of any file the kernel writes (``RLIMIT_FSIZE``).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.grading.launch")
    parser.add_argument("--memory", type=int, help="address space limit, MB")
    parser.add_argument("--nproc", type=int, help="processes and threads limit")
    parser.add_argument("--fsize", type=int, help="file size limit, MB")
    parser.add_argument("--sandboxed", action="store_true",
                        help="inside bubblewrap's PID namespace: the worker's PID means "
                             "nothing here, so the kernel must not poll it (bubblewrap's "
                             "--die-with-parent ends the kernel instead)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    arguments = parser.parse_args(argv)
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("no command to run")
    if arguments.memory:
        _limit(resource.RLIMIT_AS, arguments.memory * 2**20)
    if arguments.nproc:
        _limit(resource.RLIMIT_NPROC, arguments.nproc)
    if arguments.fsize:
        _limit(resource.RLIMIT_FSIZE, arguments.fsize * 2**20)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails, not the kernel
    if arguments.sandboxed:
        os.environ.pop("JPY_PARENT_PID", None)
    os.execvp(command[0], command)


def _limit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))  # the kernel cannot raise it again


if __name__ == "__main__":
    main(sys.argv[1:])
