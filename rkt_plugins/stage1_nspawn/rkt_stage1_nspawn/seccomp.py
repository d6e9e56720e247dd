"""The seccomp filters of an app, for ``rkt enter``.

An app's filters are not its unit's doing: systemd-nspawn installs its system call filter in
the pod's PID 1 and every process of the pod inherits it (a unit's ``SystemCallFilter=`` would
add more). A command that joins the app from outside inherits nothing, so :func:`read_filters`
copies the filters of a process of the app (``PTRACE_SECCOMP_GET_FILTER``; the process is
held in a ptrace stop for that moment only, and resumes as if nothing happened) and
:func:`install_filters` installs them, oldest first, right before the command is executed.
Whatever put a filter on the app, the command gets the same programs in the same order.
"""

from __future__ import annotations

import ctypes
import errno
import os

from rkt_core.plugin_api.linux import libc

_PTRACE_DETACH = 17
_PTRACE_SEIZE = 0x4206
_PTRACE_INTERRUPT = 0x4207
_PTRACE_SECCOMP_GET_FILTER = 0x420C
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_WALL = 0x40000000
_INSTRUCTION_SIZE = 8  # struct sock_filter


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _ptrace(request: int, pid: int, addr: int = 0, data=None, *, what: str) -> int:
    return libc.call("ptrace", request, pid, ctypes.c_void_p(addr),
                     data if data is not None else ctypes.c_void_p(0), what=what)


def read_filters(pid: int, proc_fd: int) -> list[bytes]:
    """The classic BPF programs of the seccomp filters of process ``pid`` (pinned by
    ``proc_fd``, an fd of ``/proc/<pid>``), oldest first; empty if it has none."""
    _ptrace(_PTRACE_SEIZE, pid, what="cannot attach to the app's process")
    handed_back = 0
    try:
        os.stat("status", dir_fd=proc_fd)  # still the pinned process (a dead one has no entries)
        _ptrace(_PTRACE_INTERRUPT, pid, what="cannot stop the app's process")
        _, status = os.waitpid(pid, _WALL)
        if os.WIFSTOPPED(status) and status >> 16 == 0:  # not our stop: a signal arrived first
            handed_back = os.WSTOPSIG(status)  # (delivered at detach)
        programs = []
        while True:
            index = len(programs)
            try:
                count = _ptrace(_PTRACE_SECCOMP_GET_FILTER, pid, index, what="cannot read a filter")
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EINVAL):  # no more filters, or none at all
                    break
                raise
            buffer = ctypes.create_string_buffer(count * _INSTRUCTION_SIZE)
            _ptrace(_PTRACE_SECCOMP_GET_FILTER, pid, index, buffer, what="cannot read a filter")
            programs.append(buffer.raw)
    finally:
        try:
            _ptrace(_PTRACE_DETACH, pid, 0, ctypes.c_void_p(handed_back),
                    what="cannot let go of the app's process")
        except OSError:
            pass  # it died meanwhile
    return programs  # the kernel numbers them from the oldest


def install_filters(programs: list[bytes]) -> None:
    """Install ``programs`` (oldest first) as seccomp filters of this process, which has
    no_new_privs set or CAP_SYS_ADMIN."""
    for program in programs:
        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = _SockFprog(len(program) // _INSTRUCTION_SIZE, ctypes.addressof(buffer))
        libc.call("prctl", _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0,
                  what="cannot install the app's seccomp filter")
