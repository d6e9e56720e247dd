"""The event journal: what every rkt process on the machine saw happen to pods and images.

The plugin's observers run in every ``rkt`` process that has it installed and append one JSON
line per event to ``<data dir>/api-service/events``; ``rkt api-service`` reads the file from
wherever it is, so a ``rkt run`` in another shell shows up in ``ListenEvents``. A line is written
with a single ``write`` under an exclusive ``flock``, so lines of concurrent writers never mix;
past :data:`MAX_BYTES` the file is renamed to ``events.1`` (one older generation is kept) and a
new one started. Only root writes it; the directory is ``2750`` and the files ``0640``, so
members of group ``rkt`` (the data directory's group) read it. Readers skip lines they cannot
parse: a crash leaves at most one torn line.
"""

from __future__ import annotations

import fcntl
import json
import os

from rkt_core.plugin_api import dataclass

DIRECTORY = "api-service"
FILE = "events"
OLD_FILE = "events.1"
MAX_BYTES = 4 << 20
MAX_LINE = 4096  # longer events lose their data
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Event:
    """One event: ``type`` is an ``EventType`` name without its prefix (``POD_STARTED``), ``id``
    the pod's uuid or the image's key, ``name`` what the API calls ``from``, ``time`` seconds
    since the epoch."""

    type: str
    id: str
    name: str
    time: float
    data: tuple[tuple[str, str], ...] = ()

    def to_line(self) -> bytes:
        """The event as one journal line."""
        record = {"type": self.type, "id": self.id, "from": self.name, "time": self.time,
                  "data": [list(kv) for kv in self.data]}
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        if len(line) > MAX_LINE:
            record["data"] = []
            line = json.dumps(record, separators=(",", ":")).encode()[:MAX_LINE - 1] + b"\n"
        return line

    @classmethod
    def from_line(cls, line: bytes) -> "Event | None":
        """The event a journal line holds, or None if it holds none."""
        try:
            record = json.loads(line)
            data = tuple((str(k), str(v)) for k, v in record.get("data") or ())
            event = cls(str(record["type"]), str(record["id"]), str(record["from"]),
                        float(record["time"]), data)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return event


def journal_dir(data_dir: str) -> str:
    """Where the journal is kept."""
    return os.path.join(data_dir, DIRECTORY)


def append(data_dir: str, event: Event) -> None:
    """Add an event to the journal (creating it, or starting a new file once it is full)."""
    directory = journal_dir(data_dir)
    try:
        os.mkdir(directory, 0o750)
        os.chmod(directory, 0o2750)  # the data directory's group reads it, whatever the umask
    except FileExistsError:
        pass
    path = os.path.join(directory, FILE)
    line = event.to_line()
    for _ in range(2):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            if st.st_nlink == 0:
                continue  # another writer rotated it while we waited: open the new one
            if st.st_mode & 0o7777 != 0o640:
                os.fchmod(fd, 0o640)
            if st.st_size + len(line) > MAX_BYTES:
                os.rename(path, os.path.join(directory, OLD_FILE))
                continue
            os.write(fd, line)
            return
        finally:
            os.close(fd)


class Reader:
    """Reads the journal's events in order, the old generation first, and then each new one
    as it is appended, across rotations."""

    def __init__(self, data_dir: str):
        self.directory = journal_dir(data_dir)
        self._file = None
        self._inode = None
        self._partial = b""

    def history(self) -> list[Event]:
        """Every event still in the journal; :meth:`new` continues after them."""
        events = []
        try:
            with open(os.path.join(self.directory, OLD_FILE), "rb") as old:
                events += self._parse(old.read())
        except FileNotFoundError:
            pass
        if self._open():
            events += self._read()
        return events

    def new(self) -> list[Event]:
        """The events appended since the last call."""
        if self._file is None:
            return self._read() if self._open() else []
        events = self._read()
        try:
            inode = os.stat(os.path.join(self.directory, FILE)).st_ino
        except FileNotFoundError:
            return events
        if inode != self._inode:  # rotated: the rest of the old file was read above
            self.close()
            if self._open():
                events += self._read()
        return events

    def close(self) -> None:
        """Close the file being followed."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._partial = b""

    def _open(self) -> bool:
        try:
            self._file = open(os.path.join(self.directory, FILE), "rb")
        except FileNotFoundError:
            return False
        self._inode = os.fstat(self._file.fileno()).st_ino
        return True

    def _read(self) -> list[Event]:
        chunks = []
        while chunk := self._file.read(READ_CHUNK):
            chunks.append(chunk)
        text = self._partial + b"".join(chunks)
        complete, _, self._partial = text.rpartition(b"\n")
        return self._parse(complete)

    @staticmethod
    def _parse(text: bytes) -> list[Event]:
        events = (Event.from_line(line) for line in text.split(b"\n") if line)
        return [e for e in events if e is not None]
