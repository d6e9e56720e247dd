"""The pod's keeper: the parent of systemd-nspawn for as long as the pod lives.

``rkt run`` forks the keeper, which forks the process that sets the pod up and becomes
systemd-nspawn. The keeper holds the pod's lock and reaps nspawn itself, so the pod reads as
running until nspawn has exited and is gone, whatever happened to ``rkt run`` (an nspawn
orphaned by a killed ``rkt run`` was left to the host's init, which may collect it a second
later). It also turns every request to stop into a shutdown the pod cannot miss:

- SIGTERM, SIGINT or SIGHUP ask the pod to shut down: ``rkt run`` passes its own on,
  ``rkt stop`` sends SIGTERM, and the keeper gets SIGTERM when ``rkt run`` dies;
- nspawn turns SIGTERM into SIGRTMIN+3 (power off) for the pod's systemd, but a systemd still
  starting has no handler for it yet, and the kernel drops signals a PID namespace's init does
  not handle (nor block): the request would be lost and the pod would run on. The keeper
  repeats it until it went out while the pod's PID 1 takes it (:class:`Shutdown`).

The keeper exits with nspawn's exit status (128+N if signal N killed it). Its ``comm`` is
``rkt-pod-keeper``, which ``rkt stop`` checks before signalling it.
"""

from __future__ import annotations

import gc
import os
import select
import signal
from typing import Callable

from rkt_core.plugin_api.linux import proc

COMM = "rkt-pod-keeper"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
POWEROFF = signal.SIGRTMIN + 3  # what nspawn sends the pod's PID 1 on SIGTERM
RETRY_MS = 50  # how often a pending shutdown is looked at


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def pod_init(nspawn_pid: int) -> int | None:
    """The pid of the pod's PID 1 (systemd), nspawn's child."""
    children = _children(nspawn_pid)
    return children[0] if children else None


def _takes(pid: int, sig: int) -> bool:
    """Whether process ``pid`` takes ``sig``: it has a handler for it, or blocks it to read
    it from a signalfd (as systemd does); a namespace's init is sent nothing else."""
    try:
        with open(f"/proc/{pid}/status") as f:
            masks = dict(line.split(":", 1) for line in f if line.startswith(("SigCgt", "SigBlk")))
        return any(int(masks[name], 16) >> (sig - 1) & 1 for name in ("SigCgt", "SigBlk"))
    except (OSError, KeyError, ValueError):
        return False


class Shutdown:
    """A request to shut down the pod of one nspawn process, kept until delivered."""

    def __init__(self) -> None:
        self.requested = False
        self.delivered = False

    @property
    def pending(self) -> bool:
        """Asked for and not delivered yet."""
        return self.requested and not self.delivered

    def push(self, nspawn_pid: int, pidfd: int) -> None:
        """Send a pending request on: SIGTERM to nspawn while it has no pod PID 1 yet (it
        stops starting) or once the PID 1 takes SIGRTMIN+3 (then it is delivered)."""
        if not self.pending:
            return
        init = pod_init(nspawn_pid)
        ready = init is not None and _takes(init, POWEROFF)
        if init is not None and not ready:
            return
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        except ProcessLookupError:
            ready = True  # nspawn is gone: nothing left to stop
        self.delivered = ready


def keep(start: Callable[[], None], channel, lock_fd: int, pid_file: str) -> None:
    """In ``rkt run``'s child: fork the process that sets the pod up and execs nspawn
    (``start``, whose set-up errors reach ``rkt run`` through ``channel``), record nspawn's
    pid in ``pid_file``, then keep the pod (see the module documentation). Never returns."""
    from rkt_core.plugin_api.fs import write_atomic

    proc.set_parent_death_signal(signal.SIGKILL)  # rkt dying during set-up aborts the start
    execed_r, execed_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(execed_r)
        start()  # execs nspawn, or raises: spawn reports the error through the channel
        raise RuntimeError("the pod's set-up returned without exec")
    os.close(execed_w)
    os.read(execed_r, 1)  # end of file: the child exec'd nspawn, or died trying
    os.close(execed_r)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:  # its error went to rkt run through the channel
        os._exit(proc.exit_code(status))
    shutdown = Shutdown()

    def request(_signum, _frame):
        shutdown.requested = True

    for sig in FORWARDED:
        signal.signal(sig, request)
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    signal.set_wakeup_fd(wake_w)
    proc.set_parent_death_signal(signal.SIGTERM)  # rkt run dies: the pod shuts down
    write_atomic(pid_file, str(pid).encode(), durable=False)
    channel.close()  # rkt run's spawn returns: the pod runs
    pidfd = os.pidfd_open(pid)
    _detach(keep_fds=(lock_fd, pidfd, wake_r, wake_w))
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        events = dict(poller.poll(RETRY_MS if shutdown.pending else None))
        if pidfd in events:
            _, status = os.waitpid(pid, 0)
            os._exit(proc.exit_code(status))  # the lock goes with this process
        if wake_r in events:
            _drain(wake_r)
        shutdown.push(pid, pidfd)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 256):
            pass
    except BlockingIOError:
        pass


def _detach(keep_fds: tuple[int, ...]) -> None:
    """Let go of everything of ``rkt run`` the keeper does not need: descriptors (stdio
    becomes /dev/null), and Python objects that own closed ones (never finalized)."""
    gc.freeze()
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(COMM)
    except OSError:
        pass
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    proc.close_fds_except(keep_fds)


def keeper_of(nspawn_pid: int) -> int | None:
    """A pinned fd (``/proc/<pid>``) of the keeper of the nspawn process ``nspawn_pid``, or
    None if its parent is not one (a pod started without, or its keeper is gone)."""
    def parent() -> int | None:
        try:
            with open(f"/proc/{nspawn_pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    ppid = parent()
    if ppid is None or ppid <= 1:
        return None
    try:
        proc_fd = proc.open_process(ppid)
    except ProcessLookupError:
        return None
    try:
        with open(os.open("comm", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)) as f:
            comm = f.read().strip()
    except OSError:
        comm = ""
    if comm != COMM or parent() != ppid:  # not a keeper, or not nspawn's parent any more
        os.close(proc_fd)
        return None
    return proc_fd
