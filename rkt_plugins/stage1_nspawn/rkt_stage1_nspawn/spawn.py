"""Forking the process that becomes systemd-nspawn, with its set-up failures reported back.

The child gets one end of a close-on-exec socket pair; if its set-up fails it sends the error
and exits 254. The parent reads until the socket closes, which a successful exec does.
"""

from __future__ import annotations

import os
import socket
from typing import Callable

from rkt_core.errors import EXIT_RKT_ERROR, RktError, describe


def spawn(child: Callable[[], None]) -> int:
    """Fork and run ``child()`` in the new process, which must exec or raise. Returns the pid
    once the child exec'd; raises RktError with the child's message (after reaping it) if its
    set-up failed."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:  # a copy of the whole rkt process: never return from here
        try:
            ours.close()
            child()
            theirs.send(b"internal error: the process set-up returned without exec")
        except BaseException as e:  # noqa: BLE001 - everything must reach the parent
            try:
                theirs.send(describe(e).encode("utf-8", "replace"))
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(EXIT_RKT_ERROR)
    theirs.close()
    with ours:
        message = ours.recv(65536)
    if message:
        os.waitpid(pid, 0)
        raise RktError(message.decode("utf-8", "replace"))
    return pid
