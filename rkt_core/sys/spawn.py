"""Forking a process that ends in exec, with its setup failures reported to the parent.

The child gets the write end of a close-on-exec channel: a pipe, or with ``fds=True`` a socket
pair over which it may also send descriptors back (:meth:`Channel.send_fds`). When its setup
fails it writes the error's message and exits 254. The parent reads until the channel closes,
which a successful exec does: from then on the child is the new program. (A pipe keeps the
``socket`` module, 4% of a fly run's instructions, out of runs that pass no descriptor.)
"""

from __future__ import annotations

import os
from typing import Callable

from ..errors import EXIT_RKT_ERROR, RktError, describe

_FAILED = b"E"


class Channel:
    """The child's end of the report channel."""

    def __init__(self, fd: int, sock=None):
        self._fd = fd
        self._sock = sock  # with fds=True

    def fileno(self) -> int:
        return self._fd

    def send_fds(self, fds: list[int]) -> None:
        """Hand descriptors to the parent (they arrive in :func:`spawn`'s result); only on a
        channel made with ``fds=True``."""
        if self._sock is None:
            raise RktError("internal error: descriptors sent on a channel made without fds=True")
        import socket

        socket.send_fds(self._sock, [b"F"], fds)

    def close(self) -> None:
        """Close the channel: :func:`spawn` returns in the parent as if the child had exec'd
        (for a child that stays, as a keeper of a process it forked that did exec)."""
        if self._sock is not None:
            self._sock.close()
        else:
            os.close(self._fd)
        self._fd = -1  # a later fail() must not write to whatever reuses the number

    def fail(self, message: str) -> None:
        """Report the error that ends the child (nothing once the channel is closed)."""
        if self._fd < 0:
            return
        report = memoryview(_FAILED + message.encode("utf-8", "replace"))
        while report:
            report = report[os.write(self._fd, report):]


def spawn(child: Callable[[Channel], None], fds: bool = False) -> tuple[int, list[int]]:
    """Fork and run ``child(channel)`` in the new process, which must exec or raise.

    Returns the child's pid and the descriptors it sent (``fds=True``) once it exec'd (or
    died); raises RktError with the child's message, after reaping it, if its setup failed.
    """
    if fds:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        channel = Channel(theirs.fileno(), theirs)
    else:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        channel = Channel(write_fd)
    pid = os.fork()
    if pid == 0:  # never return from here: this is a copy of the whole rkt process
        try:
            if fds:
                ours.close()
            else:
                os.close(read_fd)
            child(channel)
            channel.fail("internal error: the process set-up returned without exec")
        except BaseException as e:  # noqa: BLE001 - everything must reach the parent
            try:
                channel.fail(describe(e))
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(EXIT_RKT_ERROR)
    if fds:
        theirs.close()
        with ours:
            received, report = _receive_fds(ours)
    else:
        os.close(write_fd)
        received, report = [], _read_all(read_fd)
    if report[:1] == _FAILED:
        os.waitpid(pid, 0)
        for fd in received:
            os.close(fd)
        raise RktError(report[1:].decode("utf-8", "replace"))
    return pid, received


def _read_all(fd: int) -> bytes:
    """Everything written to the pipe ``fd`` until its last writer closed it; closes ``fd``."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _receive_fds(sock) -> tuple[list[int], bytes]:
    """The descriptors sent on ``sock`` until it closed, and the failure report if any."""
    import socket

    received: list[int] = []
    report = b""
    while True:
        message, fds, _flags, _addr = socket.recv_fds(sock, 65536, 8)
        received.extend(fds)
        if not message:
            return received, report
        if report or message[:1] == _FAILED:  # a long report comes in several packets
            report += message
