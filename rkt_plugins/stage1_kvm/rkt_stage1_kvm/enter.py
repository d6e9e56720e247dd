"""``rkt enter``'s side of a session with the guest agent over the VM's enter port: the
request, our stdin as INPUT frames (INPUT_END at its end), the command's output to our stdout
and stderr, its exit status. qemu serves one connection at a time: concurrent ``rkt enter``
commands of one pod wait for each other."""

from __future__ import annotations

import os
import selectors

from rkt_core.plugin_api import RktError

from . import wire


def enter_session(sock, app: str, argv: list[str]) -> int:
    """Run ``argv`` as ``app`` in the VM; return its exit status."""
    sock.sendall(wire.data(wire.ENTER, {"app": app, "argv": argv}))
    reader = wire.Reader()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "vm")
    try:
        selector.register(0, selectors.EVENT_READ, "stdin")
    except (ValueError, OSError, PermissionError):
        sock.sendall(wire.frame(wire.INPUT_END))  # no usable stdin (e.g. /dev/null)
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "stdin":
                    chunk = os.read(0, 65536)
                    if chunk:
                        sock.sendall(wire.frame(wire.INPUT, chunk))
                    else:
                        selector.unregister(0)
                        sock.sendall(wire.frame(wire.INPUT_END))
                    continue
                chunk = sock.recv(65536)
                if not chunk:
                    raise RktError("the VM closed the enter session")
                for kind, payload in reader.feed(chunk):
                    if kind == wire.OUTPUT:
                        wire.write_all(1, payload)
                    elif kind == wire.ERROR_OUTPUT:
                        wire.write_all(2, payload)
                    elif kind == wire.STATUS:
                        return wire.load(payload)
                    elif kind == wire.ERROR:
                        raise RktError(payload.decode("utf-8", "replace"))
    finally:
        selector.close()
