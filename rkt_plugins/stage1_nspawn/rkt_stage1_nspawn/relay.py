"""The apps' stdout and stderr: from their FIFOs to ``rkt run``'s own stdout and stderr, and
into the pod's journal.

Each app writes to two FIFOs (see :mod:`.rootfs`); ``rkt run`` reads them while the pod runs
and copies every chunk to its fd 1 or 2 unchanged, and to a journald stdout stream inside the
pod (``/run/systemd/journal/stdout`` of the pod's PID 1), identified as the app, priority info
for stdout and err for stderr. journald ignores streams from processes outside the pod's PID
namespace, so each stream is connected by a short-lived process that joins it
(:func:`connect_in_pod`) and hands the socket back. The connection is made lazily: until
journald's socket exists, data waits in a bounded buffer.
"""

from __future__ import annotations

import errno
import os
import select
import socket
from typing import Callable

from rkt_core.plugin_api.linux import ns

CHUNK = 65536
MAX_PENDING = 1 << 20  # bytes kept for the journal while it is not there yet
PRIORITY = {1: 6, 2: 3}  # stdout: info, stderr: err


class JournalStream:
    """One app's stream into the pod's journald."""

    def __init__(self, identifier: str, priority: int, pod_init):
        self.header = f"{identifier}\n\n{priority}\n0\n0\n0\n0\n".encode()
        self.pod_init = pod_init  # callable: the pid of the pod's PID 1, or None
        self.sock: socket.socket | None = None
        self.pending = b""
        self.broken = False

    def send(self, data: bytes) -> None:
        """Queue ``data`` and send what can be sent (never blocks for long, never raises)."""
        if self.broken:
            return
        self.pending = (self.pending + data)[-MAX_PENDING:]
        if self.sock is None and not self._connect():
            return
        try:
            self.sock.sendall(self.pending)
            self.pending = b""
        except OSError:
            self.broken = True

    def _connect(self) -> bool:
        init = self.pod_init()
        if init is None:
            return False
        self.sock = connect_in_pod(init, self.header)
        return self.sock is not None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def connect_in_pod(init: int, header: bytes) -> socket.socket | None:
    """A journald stdout stream of the pod whose PID 1 is ``init``, connected (and its
    ``header`` sent) from inside the pod's PID namespace; None if journald is not there yet."""
    path = f"/proc/{init}/root/run/systemd/journal/stdout"
    if not os.path.exists(path):
        return None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        pid_ns = ns.open_ns("pid", init)
    except OSError:
        ours.close()
        theirs.close()
        return None
    pid = os.fork()
    if pid == 0:  # joins the pod's PID namespace; its child connects
        try:
            ours.close()
            ns.setns(pid_ns, "pid")
            inner = os.fork()
            if inner == 0:
                try:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.connect(path)
                    sock.sendall(header)
                    socket.send_fds(theirs, [b"S"], [sock.fileno()])
                finally:
                    os._exit(0)
            os.waitpid(inner, 0)
        finally:
            os._exit(0)
    theirs.close()
    os.close(pid_ns)
    os.waitpid(pid, 0)
    try:
        ours.setblocking(False)
        _msg, fds, _flags, _addr = socket.recv_fds(ours, 16, 1)
    except OSError:
        return None
    finally:
        ours.close()
    if not fds:
        return None
    sock = socket.socket(fileno=fds[0])
    sock.settimeout(1.0)
    return sock


class Relay:
    """Copies the FIFOs of every app while the pod runs."""

    def __init__(self, fifos: dict[str, tuple[int, int]], apps: dict[str, str], pod_init):
        self.targets: dict[int, tuple[int, JournalStream]] = {}
        for unit, (out, err) in fifos.items():
            for fd, target in ((out, 1), (err, 2)):
                self.targets[fd] = (target, JournalStream(apps[unit], PRIORITY[target],
                                                          pod_init))

    def pump(self, until_fd: int, also: dict[int, Callable[[], bool]] | None = None) -> None:
        """Copy until ``until_fd`` (a pidfd of nspawn) is readable, then drain what is left.
        ``also`` maps more descriptors to what to call when they are readable; a call that
        returns True is the last for its descriptor."""
        also = dict(also or {})
        poller = select.poll()
        for fd in [*self.targets, *also]:
            poller.register(fd, select.POLLIN)
        poller.register(until_fd, select.POLLIN)
        while True:
            waiting = any(j.pending and not j.broken for _, j in self.targets.values())
            events = poller.poll(100 if waiting else None)
            done = False
            for fd, _ in events:
                if fd == until_fd:
                    done = True
                elif fd in also:
                    if also[fd]():
                        poller.unregister(fd)
                        del also[fd]
                else:
                    self._copy(fd)
            if waiting:
                for _, journal in self.targets.values():
                    if journal.pending:
                        journal.send(b"")
            if done:
                break
        for fd in self.targets:
            self._copy(fd)

    def _copy(self, fd: int) -> None:
        target, journal = self.targets[fd]
        while True:
            try:
                data = os.read(fd, CHUNK)
            except BlockingIOError:
                return
            if not data:
                return
            _write_all(target, data)
            journal.send(data)

    def close(self) -> None:
        for fd, (_, journal) in self.targets.items():
            journal.close()
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.EBADF):
                return  # nobody reads rkt run's output any more: the app's still goes to the journal
            raise
        data = data[written:]
