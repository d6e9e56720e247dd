"""Processes: descriptors, signals, identity through /proc, and waiting for a child."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator

# Signals ``rkt run`` and ``rkt enter`` pass on to the process they wait for.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)

_SI_KERNEL = 0x80  # si_code of a signal the kernel raised (a terminal's ^C), not kill(2)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4


def _prctl(option: int, value: int, what: str) -> None:
    from .libc import call  # ctypes: only for a process that makes a prctl

    call("prctl", option, value, 0, 0, 0, what=f"cannot {what}")


def set_dumpable(dumpable: bool) -> None:
    """prctl(PR_SET_DUMPABLE): a non-dumpable process cannot be ptraced and its /proc files
    (``exe``, ``fd``, ``root``) are closed to other users; exec resets it."""
    _prctl(_PR_SET_DUMPABLE, int(dumpable), "change the dumpable flag")


def set_parent_death_signal(sig: int) -> None:
    """prctl(PR_SET_PDEATHSIG): get ``sig`` when the parent dies (0: nothing)."""
    _prctl(_PR_SET_PDEATHSIG, sig, "set the parent death signal")


def close_fds_except(keep: Iterable[int]) -> None:
    """Close every descriptor from 3 up except those in ``keep``."""
    low = 3
    for fd in sorted(set(fd for fd in keep if fd >= 3)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(low, os.sysconf("SC_OPEN_MAX")))


def close_in_background(fds: Iterable[int]) -> None:
    """Close ``fds`` in a detached process and return at once (our copies are closed too).

    Dropping the last reference to a mount namespace unmounts everything in it, which waits for
    RCU grace periods (~90 ms here); nobody needs to wait for that. The closing process keeps
    nothing else open (no pod lock), so it affects no state.
    """
    fds = [fd for fd in fds if fd >= 0]
    if not fds:  # no double fork for nothing (a few milliseconds of a fly run)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            if os.fork() == 0:
                os.setsid()
                devnull = os.open(os.devnull, os.O_RDWR)
                for std in (0, 1, 2):  # a pipe on our output must not wait for this process
                    os.dup2(devnull, std)
                close_fds_except(fds)
                for fd in fds:
                    os.close(fd)
        finally:
            os._exit(0)
    for fd in fds:
        os.close(fd)
    os.waitpid(pid, 0)


def open_process(pid: int) -> int:
    """An fd of ``/proc/<pid>``. It stays bound to that process (never to a later one with the
    same pid) and is a pidfd for :func:`send_signal`. ProcessLookupError if there is none."""
    try:
        return os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}") from None


def holds_open(proc_fd: int, st: os.stat_result) -> bool:
    """Whether the process of ``proc_fd`` has a descriptor open on the file ``st`` describes."""
    try:
        fds = os.open("fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    except (FileNotFoundError, ProcessLookupError):
        return False
    try:
        for name in os.listdir(fds):
            try:
                other = os.stat(name, dir_fd=fds)
            except OSError:
                continue  # closed meanwhile
            if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                return True
        return False
    finally:
        os.close(fds)


def send_signal(proc_fd: int, sig: int) -> None:
    """Signal the process an fd of ``/proc/<pid>`` pins (ProcessLookupError once it exited)."""
    signal.pidfd_send_signal(proc_fd, sig)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N if killed by signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


@contextmanager
def blocked_signals(signals: Iterable[int]) -> Iterator[None]:
    """Block ``signals`` and SIGCHLD for the block (so :func:`wait_forwarding` misses none);
    children forked meanwhile must call :func:`restore_default_signals`."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals) | {signal.SIGCHLD})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_WAKE_INTERVAL = 0.5  # seconds between the wake-ups of :func:`prompt_signals`


def _wake(_signum, _frame) -> None:
    """SIGALRM's handler while :func:`prompt_signals` runs: the interruption is the point."""


@contextmanager
def prompt_signals() -> Iterator[None]:
    """Around blocking waits (network reads): a signal Python handles (Ctrl-C's
    KeyboardInterrupt) takes effect within half a second even when it lands just before a wait.

    Python runs a signal's handler between bytecodes; a signal that arrives after the last check
    and before the process sleeps in the kernel interrupts nothing, and the call sleeps on (a
    network read: up to its timeout). A timer's SIGALRM interrupts such a wait every
    :data:`_WAKE_INTERVAL`; Python then runs the pending handlers and, if none raises, resumes
    the wait (PEP 475). Only in the main thread; an inner block leaves the outer's timer. The
    SIGALRM handler stays installed afterwards: a wake-up still in flight when the timer stops
    must not kill the process.
    """
    if signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        yield  # an outer block's timer runs (or someone else's: leave it alone)
        return
    try:
        signal.signal(signal.SIGALRM, _wake)
    except ValueError:  # not the main thread: its signals are not ours to handle
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, _WAKE_INTERVAL, _WAKE_INTERVAL)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def restore_default_signals() -> None:
    """In a forked child about to exec: default dispositions for what Python changed (SIGINT,
    SIGPIPE, SIGXFSZ) and for the forwarded signals, and nothing blocked."""
    for sig in set(FORWARDED) | {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD}:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def wait_forwarding(pid: int, signals: Iterable[int] = FORWARDED) -> int:
    """Wait for the child ``pid`` (inside :func:`blocked_signals`), passing on ``signals``
    sent to this process with kill(2); return its :func:`exit_code`. Signals the kernel raised
    (a terminal's ^C) are not passed on: they reached the child's process group already."""
    watched = set(signals) | {signal.SIGCHLD}
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return exit_code(status)
        info = signal.sigwaitinfo(watched)
        if info.si_signo != signal.SIGCHLD and info.si_code != _SI_KERNEL:
            os.kill(pid, info.si_signo)
