"""The apps' logs of a pod of the kvm flavor, running or exited (``Stage1Logs``).

``rkt run`` relays what each app writes to stdout and stderr and keeps it, line by line with
the time it arrived, in ``kvm/logs/<app>`` (:class:`Writer`); :func:`read_logs` reads those
files, and follows them while the pod runs.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Iterator

from rkt_core.plugin_api import LOG_KEEPALIVE_SECONDS, LogLine, NotFoundError

POLL_SECONDS = LOG_KEEPALIVE_SECONDS / 2  # how often a follower looks for new lines


class Writer:
    """Appends one app's output to its log, a line at a time (``<time> <stream> <text>``); a
    line still unfinished when the app's streams close is written as it is."""

    def __init__(self, path: str):
        self.file = open(path, "ab", buffering=0)
        self.pending: dict[int, bytes] = {}

    def write(self, stream: int, chunk: bytes) -> None:
        """Record what the app wrote to ``stream`` (1 or 2)."""
        *complete, self.pending[stream] = (self.pending.get(stream, b"") + chunk).split(b"\n")
        self._lines(stream, complete)

    def close(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                self._lines(stream, [rest])
        self.file.close()

    def _lines(self, stream: int, lines: list[bytes]) -> None:
        if lines:
            stamp = b"%.6f %d " % (time.time(), stream)
            self.file.write(b"".join(stamp + line.replace(b"\r", b"") + b"\n" for line in lines))


def read_logs(pod, log_dir: str, app: str, lines: int, follow: bool, since: float | None,
              until: float | None) -> Iterator[LogLine | None]:
    """The lines the pod's apps (``app``: that one) logged (see ``Stage1Logs.logs``)."""
    names = [app] if app else [a.name for a in pod.manifest().apps]
    if not os.path.isdir(log_dir) and not (follow and pod.is_locked()):
        raise NotFoundError(f'pod "{pod.uuid}" has no logs (it never ran)')
    return _lines(pod, log_dir, names, lines, follow,
                  (since if since is not None else float("-inf"),
                   until if until is not None else float("inf")))


def _lines(pod, log_dir: str, names: list[str], lines: int, follow: bool,
           window: tuple[float, float]) -> Iterator[LogLine | None]:
    files: dict[str, object] = {}
    pending = {name: b"" for name in names}
    try:
        first = True
        while True:
            found = []
            for name in names:
                if name not in files:
                    try:
                        files[name] = open(os.path.join(log_dir, name), "rb")
                    except FileNotFoundError:
                        continue
                *complete, pending[name] = (pending[name] + files[name].read()).split(b"\n")
                found += [line for line in map(lambda raw: _parse(name, raw), complete)
                          if line is not None and window[0] <= line.time <= window[1]]
            found.sort(key=lambda line: line.time)
            if first and lines:
                found = list(deque(found, maxlen=lines))
            first = False
            yield from found
            if not follow:
                return
            if not found:
                if not pod.is_locked() and all(not p for p in pending.values()):
                    return
                yield None
                time.sleep(POLL_SECONDS)
    finally:
        for f in files.values():
            f.close()


def _parse(app: str, raw: bytes) -> LogLine | None:
    try:
        stamp, _stream, text = raw.split(b" ", 2)
        return LogLine(float(stamp), app, text.decode("utf-8", "replace"))
    except ValueError:
        return None
