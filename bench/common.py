"""Helpers for the benchmarks: time whole commands, print medians and ratios.

Benchmarks print numbers; they never assert on them (tests must not depend on timing).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RKT = [sys.executable, "-m", "rkt_core.cli.main"]
if (Path(sys.executable).parent / "rkt").exists():
    RKT = [str(Path(sys.executable).parent / "rkt")]


def median_seconds(argv: list[str], runs: int = 10, setup=None, **kwargs) -> float:
    """The median wall time of running ``argv`` (``setup()`` runs untimed before each run)."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(name: str, seconds: float, reference: tuple[str, float] | None = None,
           target: float | None = None) -> None:
    """One line: the time, its ratio to a reference tool, and the project's target."""
    line = f"{name:<48} {seconds * 1000:8.1f} ms"
    if reference:
        ref_name, ref_seconds = reference
        line += f"   {seconds / ref_seconds:6.2f}x {ref_name} ({ref_seconds * 1000:.1f} ms)"
    if target:
        line += f"   target <= {target * 1000:.0f} ms"
    print(line, flush=True)


def have(tool: str) -> bool:
    """Whether a reference tool is installed."""
    return shutil.which(tool) is not None


def require_root() -> None:
    """Exit with a message unless running as root."""
    if os.geteuid() != 0:
        sys.exit("this benchmark needs root")
