"""The apps' logs of a pod of the nspawn flavor, running or exited (``Stage1Logs``).

journald inside the pod keeps the journal in the pod's stage1 root
(``var/log/journal/<machine id>``); the host's ``journalctl -D`` reads it, matching the apps'
syslog identifiers (each app's service logs as the app). Following stops once the pod is no
longer running: journalctl's ``--follow`` never would, so the lines logged after the last one
seen are then read once more, from its cursor.
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import time
from typing import Iterator

from rkt_core.plugin_api import LOG_KEEPALIVE_SECONDS, LogLine, NotFoundError, RktError

from . import rootfs

POLL_SECONDS = LOG_KEEPALIVE_SECONDS / 2  # how often a follower checks that the pod still runs


def read_logs(pod, app: str, lines: int, follow: bool, since: float | None,
              until: float | None) -> Iterator[LogLine | None]:
    """The lines the pod's apps (``app``: that one) logged (see ``Stage1Logs.logs``)."""
    journal = rootfs.journal_dir(pod)
    if not os.path.isdir(journal) and not (follow and pod.is_locked()):
        raise NotFoundError(f'pod "{pod.uuid}" has no journal (it never ran)')
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise RktError("journalctl is not installed")
    argv = [journalctl, "-D", journal, "--no-pager", "-o", "json",
            "--output-fields=MESSAGE,SYSLOG_IDENTIFIER"]
    for name in [app] if app else [a.name for a in pod.manifest().apps]:
        argv += ["-t", name]
    if since is not None:
        argv.append(f"--since=@{math.floor(since)}")
    if until is not None:
        argv.append(f"--until=@{math.ceil(until)}")
    window = (since if since is not None else -math.inf, until if until is not None else math.inf)
    if not follow:
        return _read(argv + (["-n", str(lines)] if lines else []), window)
    return _follow_then_rest(argv, lines, window, pod, journal)


def _follow_then_rest(argv: list[str], lines: int, window: tuple[float, float], pod,
                      journal: str) -> Iterator[LogLine | None]:
    while not os.path.isdir(journal):  # a pod that just started: journald makes it soon
        if not pod.is_locked():
            return
        yield None
        time.sleep(POLL_SECONDS)
    cursor = ""
    while True:
        start = [f"--after-cursor={cursor}"] if cursor else ["-n", str(lines) if lines else "all"]
        for line, at in _follow(argv + start + ["-f"], pod):
            if line is None:
                yield None
                continue
            cursor = at
            if window[0] <= line.time <= window[1]:
                yield line
        if not pod.is_locked():
            break
        # journalctl gave up while the pod runs: journald had made the directory but no
        # journal file yet ("not available"); follow again from where it stopped
        yield None
        time.sleep(POLL_SECONDS)
    rest = [f"--after-cursor={cursor}"] if cursor else ["-n", str(lines)] if lines else []
    yield from _read(argv + rest, window)


def _read(argv: list[str], window: tuple[float, float]) -> Iterator[LogLine]:
    """The lines journalctl prints, until it exits."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for raw in process.stdout:
            line, _ = _entry(raw)
            if line is not None and window[0] <= line.time <= window[1]:
                yield line
        error = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise RktError(f"journalctl failed: {error}")
    finally:
        _end(process)


def _follow(argv: list[str], pod) -> Iterator[tuple[LogLine | None, str]]:
    """Lines (with their journal cursors) as ``journalctl -f`` prints them, until the pod is
    no longer running; ``(None, "")`` while nothing comes."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pending = b""
    try:
        fd = process.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
            if not ready:
                if not pod.is_locked():
                    return
                yield None, ""
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                line, cursor = _entry(raw)
                if line is not None:
                    yield line, cursor
    finally:
        _end(process)


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _entry(raw: bytes) -> tuple[LogLine | None, str]:
    """A journal entry of ``journalctl -o json``, and its cursor."""
    try:
        entry = json.loads(raw)
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):  # not valid UTF-8: an array of bytes
            message = bytes(message).decode(errors="replace")
        line = LogLine(int(entry["__REALTIME_TIMESTAMP"]) / 1e6,
                       str(entry.get("SYSLOG_IDENTIFIER", "")), str(message or ""))
        return line, str(entry.get("__CURSOR", ""))
    except (ValueError, KeyError, TypeError):
        return None, ""
