"""The optional sandbox of each kernel: Debian's bubblewrap (``bwrap``) plus rlimits.

Under ``--sandbox`` a kernel runs with

* no network (``--unshare-net``: a private network namespace with only its own loopback);
* a read-only view of the whole file system (``--ro-bind / /``), a private ``/tmp`` and
  ``/dev``, and write access only to its own temporary folder;
* its own PID namespace (it cannot see or signal the grader or other kernels) and IPC
  namespace, in a new session, killed with the grader (``--die-with-parent``);
* limits on processes and threads (``RLIMIT_NPROC``) and on file size (``RLIMIT_FSIZE``),
  and on memory with ``--memory``.

The kernel talks to the grader over Unix sockets in its temporary folder (ZeroMQ's ``ipc``
transport), since it has no shared network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

FILE_SIZE_MB = 256
EXTRA_TASKS = 512  # processes + threads a kernel may add to what the user already runs


class SandboxUnavailable(RuntimeError):
    """``--sandbox`` was asked for but this platform cannot provide it."""


def check_available() -> str:
    """The path of a working ``bwrap``, or :class:`SandboxUnavailable` saying what is
    missing."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "--sandbox needs bubblewrap (`bwrap`), which is not installed: "
            "`sudo apt-get install bubblewrap` (Debian/Ubuntu)"
        )
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--unshare-net", "--unshare-pid", "--die-with-parent", "true"]
    try:
        process = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxUnavailable(f"--sandbox: {bwrap} cannot run: {error}") from None
    if process.returncode != 0:
        reason = (process.stderr.strip().splitlines() or ["no message"])[-1]
        raise SandboxUnavailable(
            f"--sandbox: bubblewrap cannot create namespaces here ({reason}); unprivileged "
            "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone or "
            "a container without them)"
        )
    return bwrap


def user_tasks() -> int:
    """How many processes and threads this user runs now (what ``RLIMIT_NPROC`` counts)."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _needed_under_tmp() -> list[str]:
    """Folders the kernel must read that the private ``/tmp`` would hide: the Python
    environment and the companion's own source tree, when they live under ``/tmp`` (a
    virtual environment in a clone in ``/tmp``, as CI makes)."""
    import companion

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(companion.__file__)))
    candidates = {sys.prefix, sys.exec_prefix, sys.base_prefix, package_root}
    return sorted(path for path in candidates
                  if os.path.realpath(path).startswith("/tmp/") or path.startswith("/tmp/"))


def bwrap_prefix(bwrap: str, workdir: str) -> list[str]:
    """The ``bwrap`` arguments that confine a command to ``workdir``."""
    read_only = [arg for path in _needed_under_tmp() for arg in ("--ro-bind", path, path)]
    return [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--tmpfs", "/tmp", *read_only, "--bind", workdir, workdir, "--chdir", workdir,
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--new-session", "--die-with-parent", "--",
    ]
