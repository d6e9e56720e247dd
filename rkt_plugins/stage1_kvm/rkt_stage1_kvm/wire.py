"""Frames between ``rkt`` on the host and the agent inside the VM (virtio-serial ports).

A frame is a kind byte, a 4-byte length and that many bytes; structured payloads are
``marshal`` data of plain types (the guest runs the host's own Python). This module imports
only what the guest's small Python has: it runs on both sides.

Control port (``rkt.control``): the guest says HELLO (with the guest's uptime when its init
and its agent started), the host answers PLAN (what to run), the guest reports STARTED (its
uptime once the apps were started), EXITED per app and ERROR messages; the host may send STOP. Enter port
(``rkt.enter``): the host sends ENTER (app, argv, tty), then INPUT and INPUT_END; the guest
answers OUTPUT/ERROR_OUTPUT and finally STATUS (or ERROR).
"""

import marshal
import os
import struct

HELLO, PLAN, STARTED, EXITED, ERROR, STOP = b"H", b"P", b"A", b"X", b"E", b"S"
ENTER, INPUT, INPUT_END, OUTPUT, ERROR_OUTPUT, STATUS = b"N", b"I", b"Z", b"O", b"R", b"T"

_HEADER = struct.Struct("!cI")
MAX_FRAME = 16 << 20  # a plan with every environment variable fits many times over


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    """One frame."""
    return _HEADER.pack(kind, len(payload)) + payload


def data(kind: bytes, value) -> bytes:
    """A frame carrying ``value`` (plain types: dict, list, str, int, bytes...)."""
    return frame(kind, marshal.dumps(value))


def load(payload: bytes):
    """The value a :func:`data` frame carries."""
    return marshal.loads(payload)


def write_all(fd: int, buffer: bytes) -> None:
    """Write all of ``buffer`` to a blocking descriptor."""
    view = memoryview(buffer)
    while view:
        view = view[os.write(fd, view):]


class Reader:
    """Splits the bytes read from a descriptor into frames."""

    def __init__(self):
        self.buffer = b""

    def feed(self, chunk: bytes) -> list:
        """Add bytes read; return the (kind, payload) frames now complete."""
        self.buffer += chunk
        frames = []
        while len(self.buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes is too long")
            end = _HEADER.size + length
            if len(self.buffer) < end:
                break
            frames.append((kind, self.buffer[_HEADER.size:end]))
            self.buffer = self.buffer[end:]
        return frames
