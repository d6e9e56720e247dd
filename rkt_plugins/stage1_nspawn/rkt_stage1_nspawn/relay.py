"""The apps' stdout and stderr: from their FIFOs to ``rkt run``'s own stdout and stderr, and
into the pod's journal.

Each app writes to two FIFOs (see :mod:`.rootfs`); ``rkt run`` reads them while the pod runs
and copies every chunk to its fd 1 or 2 unchanged, and to a journald stdout stream inside the
pod (``/run/systemd/journal/stdout`` of the pod's PID 1), identified as the app, priority info
for stdout and err for stderr. The journal connection is made lazily: until journald's socket
exists, data waits in a bounded buffer.
"""

from __future__ import annotations

import errno
import os
import select
import socket

CHUNK = 65536
MAX_PENDING = 1 << 20  # bytes kept for the journal while it is not there yet
PRIORITY = {1: 6, 2: 3}  # stdout: info, stderr: err


class JournalStream:
    """One app's stream into the pod's journald."""

    def __init__(self, identifier: str, priority: int, socket_path):
        self.header = f"{identifier}\n\n{priority}\n0\n0\n0\n0\n".encode()
        self.socket_path = socket_path  # callable: the socket's path, or None if not known yet
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
        path = self.socket_path()
        if path is None:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(1.0)
        try:
            sock.connect(path)
            sock.sendall(self.header)
        except OSError:
            sock.close()
            return False
        self.sock = sock
        return True

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class Relay:
    """Copies the FIFOs of every app while the pod runs."""

    def __init__(self, fifos: dict[str, tuple[int, int]], apps: dict[str, str], socket_path):
        self.targets: dict[int, tuple[int, JournalStream]] = {}
        for unit, (out, err) in fifos.items():
            for fd, target in ((out, 1), (err, 2)):
                self.targets[fd] = (target, JournalStream(apps[unit], PRIORITY[target],
                                                          socket_path))

    def pump(self, until_fd: int) -> None:
        """Copy until ``until_fd`` (a pidfd of nspawn) is readable, then drain what is left."""
        poller = select.poll()
        for fd in self.targets:
            poller.register(fd, select.POLLIN)
        poller.register(until_fd, select.POLLIN)
        while True:
            waiting = any(j.pending and not j.broken for _, j in self.targets.values())
            events = poller.poll(100 if waiting else None)
            done = False
            for fd, _ in events:
                if fd == until_fd:
                    done = True
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
