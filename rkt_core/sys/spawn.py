"""Forking a process that ends in exec, with its setup failures reported to the parent.

The child gets one end of a close-on-exec socket pair. Before exec it may send descriptors back
(:meth:`Channel.send_fds`); when its setup fails it sends the error's message and exits 254.
The parent reads until the socket closes, which a successful exec does: from then on the child
is the new program.
"""

from __future__ import annotations

import os
import socket
from typing import Callable

from ..errors import EXIT_RKT_ERROR, RktError, describe


class Channel:
    """The child's end of the report socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send_fds(self, fds: list[int]) -> None:
        """Hand descriptors to the parent (they arrive in :func:`spawn`'s result)."""
        socket.send_fds(self.sock, [b"F"], fds)

    def fail(self, message: str) -> None:
        """Report the error that ends the child."""
        self.sock.send(b"E" + message.encode("utf-8", "replace"))


def spawn(child: Callable[[Channel], None]) -> tuple[int, list[int]]:
    """Fork and run ``child(channel)`` in the new process, which must exec or raise.

    Returns the child's pid and the descriptors it sent once it exec'd (or died); raises
    RktError with the child's message, after reaping it, if its setup failed.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # never return from here: this is a copy of the whole rkt process
        channel = Channel(theirs)
        try:
            ours.close()
            child(channel)
            channel.fail("internal error: the process set-up returned without exec")
        except BaseException as e:  # noqa: BLE001 - everything must reach the parent
            try:
                channel.fail(describe(e))
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(EXIT_RKT_ERROR)
    theirs.close()
    fds: list[int] = []
    error = None
    with ours:
        while True:
            message, received, _flags, _addr = socket.recv_fds(ours, 65536, 8)
            fds.extend(received)
            if not message:
                break
            if message[:1] == b"E":
                error = message[1:].decode("utf-8", "replace")
    if error is not None:
        os.waitpid(pid, 0)
        for fd in fds:
            os.close(fd)
        raise RktError(error)
    return pid, fds
