"""The ``--sandbox`` kernel has no privileges, even when the grader runs as root: it cannot
unmount its private /tmp, remount / writable, or write anywhere but its own folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from companion.grading import sandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None,
                                reason="bubblewrap (bwrap) is not installed")

REPO = Path(__file__).resolve().parents[1]


def run_sandboxed(workdir: Path, source: str) -> subprocess.CompletedProcess:
    """Run Python ``source`` under the grader's bwrap prefix, confined to ``workdir``."""
    prefix = sandbox.bwrap_prefix(shutil.which("bwrap"), str(workdir))
    process = subprocess.run([*prefix, sys.executable, "-c", source],
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stdout + process.stderr
    return process


def test_the_sandboxed_process_has_no_capabilities(tmp_path):
    process = run_sandboxed(tmp_path, (
        "import os\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "print(status['CapEff'].strip(), os.getuid())\n"
    ))
    capabilities, uid = process.stdout.split()
    assert capabilities == "0000000000000000"
    assert int(uid) == (65534 if os.getuid() == 0 else os.getuid())


def test_it_cannot_unmount_tmp_or_remount_root_writable(tmp_path):
    process = run_sandboxed(tmp_path, (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "MNT_DETACH, MS_REMOUNT, MS_BIND = 2, 32, 4096\n"
        "umount = libc.umount2(b'/tmp', MNT_DETACH), ctypes.get_errno()\n"
        "remount = libc.mount(None, b'/', None, MS_REMOUNT | MS_BIND, None), ctypes.get_errno()\n"
        "print(*umount, *remount)\n"
    ))
    umount, umount_errno, remount, remount_errno = map(int, process.stdout.split())
    assert (umount, remount) == (-1, -1), process.stdout
    assert {umount_errno, remount_errno} <= {1}  # EPERM: no CAP_SYS_ADMIN


@pytest.mark.parametrize("tool", ["umount -l /tmp", "mount -o remount,bind,rw /"])
def test_the_mount_tools_fail_too(tmp_path, tool):
    if shutil.which(tool.split()[0]) is None:
        pytest.skip(f"no {tool.split()[0]} here")
    process = run_sandboxed(tmp_path, (
        "import subprocess\n"
        f"print(subprocess.run({tool.split()!r}, capture_output=True).returncode)\n"
    ))
    assert int(process.stdout) != 0


def test_it_writes_its_folder_and_nothing_outside(tmp_path):
    workdir = tmp_path / "nb"
    workdir.mkdir()
    under_tmp = tmp_path / "escaped.txt"  # hidden by the private /tmp
    in_repo = REPO / "escaped-from-sandbox.txt"  # read-only
    process = run_sandboxed(workdir, (
        "import sys\n"
        "open('mine.txt', 'w').write('ok')\n"
        f"open({str(under_tmp)!r}, 'w').write('escaped')\n"
        "try:\n"
        f"    open({str(in_repo)!r}, 'w').write('escaped')\n"
        "except OSError as error:\n"
        "    print(error.errno)\n"
    ))
    assert (workdir / "mine.txt").read_text() == "ok"
    assert not under_tmp.exists()
    assert not in_repo.exists()
    assert int(process.stdout) == 30  # EROFS


def test_check_available_refuses_a_sandbox_that_keeps_capabilities(monkeypatch):
    assert sandbox.check_available().endswith("bwrap")
    monkeypatch.setattr(sandbox, "_PROBE", "print('000001fffeffffff')")
    with pytest.raises(sandbox.SandboxUnavailable, match="would keep capabilities"):
        sandbox.check_available()


@pytest.mark.skipif(os.getuid() != 0, reason="only root keeps capabilities without a userns")
def test_check_available_catches_the_old_root_prefix(monkeypatch):
    real_prefix = sandbox.bwrap_prefix

    def old_prefix(bwrap, workdir):  # the prefix before the fix: no user namespace
        prefix = real_prefix(bwrap, workdir)
        for flag in ("--cap-drop", "--uid", "--gid"):
            del prefix[prefix.index(flag):prefix.index(flag) + 2]
        return [arg for arg in prefix if arg not in ("--unshare-user", "--disable-userns")]

    monkeypatch.setattr(sandbox, "bwrap_prefix", old_prefix)
    with pytest.raises(sandbox.SandboxUnavailable, match="would keep capabilities"):
        sandbox.check_available()
