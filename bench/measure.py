"""Running the timed commands of a benchmark: wall time, and peak memory from ``wait4``."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

GNU_TIME = "/usr/bin/time"


class CommandFailed(Exception):
    """A timed command exited with a status its side does not expect."""


@dataclass(frozen=True)
class Sample:
    """One run of a side: its wall time and, if asked for, the largest resident set of any of
    its processes (0 otherwise)."""

    seconds: float
    max_rss_bytes: int = 0


def run(commands: list[list[str]], env: dict[str, str], ok_status: frozenset[int],
        memory: bool = False) -> Sample:
    """Run ``commands`` one after another (stdin and stdout on /dev/null) and measure them.

    The time spans the first spawn to the last exit. With ``memory``, each command runs under
    GNU time, which reports ``ru_maxrss`` of its ``wait4``: the command's high-water mark,
    exec'd images and reaped descendants included. A command spawned from this process
    directly would inherit our own resident set as its starting high-water mark (fork copies
    it, and exec keeps the larger of the old and the new), hence the small program between.
    """
    max_rss = 0
    with tempfile.NamedTemporaryFile() as stderr, tempfile.NamedTemporaryFile("r") as rss:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2)]
        start = time.perf_counter()
        for argv in commands:
            if memory:
                argv = [GNU_TIME, "--format=%M", f"--output={rss.name}", *argv]
            pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code not in ok_status:
                stderr.seek(0)
                raise CommandFailed(f"{' '.join(argv)} exited with {code}: "
                                    f"{stderr.read().decode(errors='replace').strip()[-2000:]}")
            if memory:
                rss.seek(0)
                max_rss = max(max_rss, int(rss.read().split()[-1]) * 1024)
        seconds = time.perf_counter() - start
    return Sample(seconds, max_rss)
