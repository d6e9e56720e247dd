"""A description of the machine the figures come from, printed above them."""

from __future__ import annotations

import os
import platform
import subprocess


def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def filesystem(path: str) -> str:
    """The type and source of the filesystem holding ``path`` (``ext4 on /dev/vda``)."""
    found = subprocess.run(["findmnt", "--noheadings", "--output=FSTYPE,SOURCE", "--target", path],
                           capture_output=True, text=True)
    kind, _, source = found.stdout.strip().partition(" ")
    return f"{kind} on {source.strip()}" if kind else "unknown filesystem"


def load() -> str:
    """The 1-minute load average and the number of processes running right now."""
    with open("/proc/loadavg") as f:
        one, _, _, running, _ = f.read().split()
    return f"load average {one}, {running.split('/')[0]} running"


def source(checkout) -> str:
    """The commit of the checkout the benchmarked rkt was built from, and whether it had
    changes not committed."""
    found = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                           capture_output=True, text=True)
    return f"source: commit {found.stdout.strip() or 'unknown (not a git checkout)'}"


def describe(data_dir: str) -> list[str]:
    """Lines naming the CPU, cores, memory, kernel, Python and the data directory's filesystem."""
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB memory",
        f"kernel: Linux {platform.release()}; Python {platform.python_version()}",
        f"data directory: {data_dir} ({filesystem(data_dir)})",
        f"at start: {load()}",
    ]
