"""Pseudo-terminal helpers for tests of what rkt prints on a terminal."""

from __future__ import annotations

import os
import select


def drain(master: int) -> bytes:
    """Everything already written to the terminal whose master side is ``master``, read
    without blocking; closes ``master``."""
    data = b""
    try:
        while select.select([master], [], [], 0)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(master)
    return data
