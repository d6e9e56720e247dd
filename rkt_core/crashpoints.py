"""Crash points: named places where the hardening tests kill rkt to prove a crash there loses
nothing and leaves nothing that ``gc`` does not remove.

``RKT_TEST_CRASH_AT=<name>:<n>`` (test-only) makes the process SIGKILL itself the ``n``-th time
(default 1) it reaches the point ``<name>``. Unset, a crash point costs a comparison.
"""

from __future__ import annotations

import os

_WANTED = os.environ.get("RKT_TEST_CRASH_AT")
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here if the test asked for it (see the module docstring)."""
    if _WANTED is None:
        return
    wanted, _, count = _WANTED.partition(":")
    if name != wanted:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(count or 1):
        import signal  # here: its enums cost every command that only passes crash points

        os.kill(os.getpid(), signal.SIGKILL)
