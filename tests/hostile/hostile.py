"""Helpers of the hardening suite: the rkt command, clear-error checks, victim directories and
the figures the suite prints."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

FIGURES: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # area -> cases, trials, failures


class Figures:
    """What one test tried: ``add(area, trials=1, failures=0)``."""

    def __init__(self):
        self.areas: set[str] = set()

    def add(self, area: str, trials: int = 1, failures: int = 0) -> None:
        figures = FIGURES[area]
        if area not in self.areas:
            self.areas.add(area)
            figures[0] += 1
        figures[1] += trials
        figures[2] += failures


class Rkt:
    """The ``rkt`` command on one data directory, run as a separate process."""

    def __init__(self, data: Path, *global_flags: str):
        self.data = data
        self.global_flags = global_flags

    def argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "rkt_core.cli.main", f"--dir={self.data}",
                *self.global_flags, *map(str, args)]

    def __call__(self, *args, env: dict | None = None, timeout: float = 600,
                 **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                              env=None if env is None else {**os.environ, **env}, **kwargs)


def assert_clear_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    """rkt refused with its exit code 254, a ``rkt: ...`` message naming what is wrong, and
    no traceback or generic handler."""
    assert result.returncode == 254, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("rkt: ") or "\nrkt: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, \
        result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type and content digest (symlinks: their target)."""
    found = {}
    if not os.path.lexists(root):
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    found[rel] = hashlib.sha256(f.read()).hexdigest()
            else:
                found[rel] = "dir" if os.path.isdir(path) else "other"
    return found


class Victim:
    """A directory with files that nothing may change (``victim.path``); ``changes()`` lists
    what differs from when it was made."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        (path / "precious").write_bytes(b"do not touch\n")
        (path / "sub").mkdir(exist_ok=True)
        (path / "sub" / "file").write_bytes(b"nor this\n")
        self.before = snapshot(path)

    def changes(self) -> dict[str, tuple[str | None, str | None]]:
        after = snapshot(self.path)
        return {k: (self.before.get(k), after.get(k)) for k in set(self.before) | set(after)
                if self.before.get(k) != after.get(k)}




def lock_waiters(path: str | Path) -> int:
    """How many processes are blocked waiting for an flock on ``path`` (from /proc/locks)."""
    st = os.stat(path)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        return sum(1 for line in f if " -> " in line and device in line.split())


def wait_until_blocked(path: str | Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``process`` waits for a lock on ``path``; fail at once if it ended instead."""
    deadline = time.monotonic() + timeout
    while lock_waiters(path) == 0:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the command did not wait for {path}: exit {process.returncode}"
                                 f"\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the command never waited for {path}")
        time.sleep(0.05)
