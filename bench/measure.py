"""Running the timed commands of a benchmark: wall time and peak memory from ``wait4``."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass


class CommandFailed(Exception):
    """A timed command exited with a status its side does not expect."""


@dataclass(frozen=True)
class Sample:
    """One run of a side: its wall time and the largest resident set of any of its processes."""

    seconds: float
    max_rss_bytes: int


def run(commands: list[list[str]], env: dict[str, str], ok_status: frozenset[int]) -> Sample:
    """Run ``commands`` one after another (stdin and stdout on /dev/null) and measure them.

    The time spans the first spawn to the last exit. The peak memory is ``ru_maxrss`` of
    ``wait4``: the child's own high-water mark (exec'd images included) or a reaped
    descendant's, whichever is larger.
    """
    max_rss = 0
    with tempfile.TemporaryFile() as stderr:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2)]
        start = time.perf_counter()
        for argv in commands:
            pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
            _, status, usage = os.wait4(pid, 0)
            max_rss = max(max_rss, usage.ru_maxrss * 1024)
            code = os.waitstatus_to_exitcode(status)
            if code not in ok_status:
                stderr.seek(0)
                raise CommandFailed(f"{' '.join(argv)} exited with {code}: "
                                    f"{stderr.read().decode(errors='replace').strip()[-2000:]}")
        seconds = time.perf_counter() - start
    return Sample(seconds, max_rss)
