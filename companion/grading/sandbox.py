"""The optional sandbox of each kernel: Debian's bubblewrap (``bwrap``) plus rlimits.

Under ``--sandbox`` a kernel runs with

* no network (``--unshare-net``: a private network namespace with only its own loopback);
* a read-only view of the whole file system (``--ro-bind / /``), a private ``/tmp`` and
  ``/dev``, and write access only to its own temporary folder;
* its own PID namespace (it cannot see or signal the grader or other kernels) and IPC
  namespace, in a new session, killed with the grader (``--die-with-parent``);
* no privileges: its own user namespace (``--unshare-user``, uid/gid 65534 inside when the
  grader is root), no capabilities (``--cap-drop ALL``) and no further user namespaces
  (``--disable-userns``, where this ``bwrap`` has it), so it cannot unmount or remount
  anything to undo the above;
* limits on processes and threads (``RLIMIT_NPROC``) and on file size (``RLIMIT_FSIZE``),
  and on memory with ``--memory``.

The kernel talks to the grader over Unix sockets in its temporary folder (ZeroMQ's ``ipc``
transport), since it has no shared network.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile

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
    with tempfile.TemporaryDirectory(prefix="companion-sandbox-") as workdir:
        probe = [*bwrap_prefix(bwrap, workdir), sys.executable, "-c", _PROBE]
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
    capabilities = process.stdout.strip()
    if capabilities != "0000000000000000":
        raise SandboxUnavailable(
            f"--sandbox: refused, a kernel in {bwrap} would keep capabilities (CapEff "
            f"{capabilities or 'unknown'}) and could undo its confinement"
        )
    return bwrap


# Run inside the sandbox by check_available: it must write its folder and have no
# capabilities (it prints its CapEff, all zeros when it has none).
_PROBE = """
open("probe", "w").close()
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("CapEff:")))
"""


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


@functools.cache
def _supports(bwrap: str, option: str) -> bool:
    help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout
    return option in help_text


def bwrap_prefix(bwrap: str, workdir: str) -> list[str]:
    """The ``bwrap`` arguments that confine a command to ``workdir``."""
    read_only = [arg for path in _needed_under_tmp() for arg in ("--ro-bind", path, path)]
    # Without a user namespace a root grader (Docker, Gradescope) would give the kernel
    # nearly every capability: it could unmount the private /tmp and remount / writable.
    # In its own user namespace with every capability dropped it can do neither. As root,
    # it is uid 65534 inside (still root outside, which owns the workdir: it stays
    # writable); as anyone else it keeps the caller's ids.
    user = ["--unshare-user", "--cap-drop", "ALL"]
    if os.getuid() == 0:
        user += ["--uid", "65534", "--gid", "65534"]
    if _supports(bwrap, "--disable-userns"):  # bubblewrap >= 0.8
        user.append("--disable-userns")
    return [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--tmpfs", "/tmp", *read_only, "--bind", workdir, workdir, "--chdir", workdir,
        *user, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--new-session", "--die-with-parent", "--",
    ]
