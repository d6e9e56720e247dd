"""Linux namespaces through ctypes: unshare(2) and setns(2) (Python 3.11 has neither)."""

from __future__ import annotations

import os

from .libc import call

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# /proc/<pid>/ns/<kind> -> CLONE_NEW* flag
KINDS = {"mnt": CLONE_NEWNS, "cgroup": CLONE_NEWCGROUP, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
         "user": CLONE_NEWUSER, "pid": CLONE_NEWPID, "net": CLONE_NEWNET}

def unshare(flags: int) -> None:
    """unshare(2): move this process into new namespaces (``CLONE_NEW*`` flags)."""
    call("unshare", flags, what=f"cannot unshare namespaces (flags {flags:#x})")


def setns(fd: int, kind: str = "") -> None:
    """setns(2): join the namespace ``fd`` refers to; ``kind`` (``mnt``, ``net``...) makes the
    kernel check that it is one."""
    call("setns", fd, KINDS[kind] if kind else 0, what=f"cannot join {kind or 'the'} namespace")


def open_ns(kind: str, pid: int | str = "self", *, proc_fd: int | None = None) -> int:
    """An fd of ``/proc/<pid>/ns/<kind>``, or of ``ns/<kind>`` under an fd of ``/proc/<pid>``
    (which pins that very process)."""
    if kind not in KINDS:
        raise ValueError(f"unknown namespace kind {kind!r}")
    flags = os.O_RDONLY | os.O_CLOEXEC
    if proc_fd is not None:
        return os.open(f"ns/{kind}", flags, dir_fd=proc_fd)
    return os.open(f"/proc/{pid}/ns/{kind}", flags)
