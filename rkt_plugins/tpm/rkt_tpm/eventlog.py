"""The event log: one JSON object per line for every extend of the PCR, in extend order, so
that replaying it gives the PCR's value.

Each event has ``time``, ``pcr``, ``type`` (0x1000, the event type rkt logged with), ``pod``,
``event`` (what was measured), ``digests`` (``{"sha256": hex}``) and ``data`` (the measured text,
or null when it is kept elsewhere: the pod manifest is the pod's ``pod`` file). The log lives in
``/run`` by default, which a reboot empties as it resets the PCRs (``$RKT_TPM_EVENT_LOG``
names another file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

LOG_ENV = "RKT_TPM_EVENT_LOG"
DEFAULT_LOG = "/run/rkt/tpm-events.log"
EVENT_TYPE = 0x1000


def log_path() -> str:
    """Where the event log is: ``$RKT_TPM_EVENT_LOG``, else ``/run/rkt/tpm-events.log``."""
    return os.environ.get(LOG_ENV) or DEFAULT_LOG


@dataclass(frozen=True)
class Event:
    """One extend of the PCR."""

    time: str
    pcr: int
    pod: str
    event: str
    digests: dict
    data: str | None = None
    type: int = EVENT_TYPE


def replay(events: list[Event], pcr: int, initial: bytes = bytes(32)) -> bytes:
    """The SHA-256 value PCR ``pcr`` has after ``events``, from ``initial`` (a reset PCR)."""
    value = initial
    for event in events:
        if event.pcr == pcr:
            value = hashlib.sha256(value + bytes.fromhex(event.digests["sha256"])).digest()
    return value


class EventLog:
    """The event log file at ``path``."""

    def __init__(self, path: str | None = None):
        self.path = path or log_path()

    @contextmanager
    def locked(self) -> Iterator["EventLog"]:
        """Hold the log exclusively (extends and appends must keep the same order)."""
        os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            yield self
        finally:
            self._fd = -1
            os.close(fd)

    def append(self, event: Event) -> None:
        """Add one event, durably (call inside :meth:`locked`)."""
        os.write(self._fd, (json.dumps(asdict(event), sort_keys=True) + "\n").encode())
        os.fsync(self._fd)

    def read(self) -> list[Event]:
        """Every event, in order (none if there is no log yet)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for number, line in enumerate(lines, 1):
            try:
                events.append(Event(**json.loads(line)))
            except (ValueError, TypeError) as e:
                raise ValueError(f"{self.path}:{number}: not an event: {e}") from None
        return events
