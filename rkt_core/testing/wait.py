"""Waiting for a condition in tests without assuming the machine is fast.

    from rkt_core.testing.wait import wait_for

    uuid = wait_for(lambda: uuid_file.exists() and uuid_file.read_text(), what="the pod's uuid")
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")

WAIT_TIMEOUT = 60.0  # seconds: generous, a loaded CI machine is slow


def wait_for(predicate: Callable[[], T], timeout: float = WAIT_TIMEOUT,
             what: str = "the condition", interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns something true and return that; fail with an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
