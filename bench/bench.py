"""Run every row of the benchmark table (rows.py) and print it: ``make bench``.

Each row runs as paired, alternating runs: ours, reference, ours, reference... after one
untimed warm-up run of each side. Before every run, the side's own preparation runs untimed
(removing the previous run's output or pods) followed by ``sync``, so that neither side is
timed while the other's deletions are still being written. Printed per row: the median and
min–max of each side and the ratio, the median of the pairwise ratios; then the target and
whether it is met. Nothing is asserted: the figures are for reading. The rows start once the
install is old enough for rkt to keep its plugin index (:func:`wait_for_settled_install`).

Settings (environment): ``BENCH_RUNS`` pairs for every row (default: each row's own, 5 to
11, chosen for about ten minutes on a 2-core machine in all), ``BENCH_ROWS``
comma-separated words picking the rows whose name contains one, ``BENCH_CACHE`` the cache of
the Debian rootfs (default /var/cache/rkt-bench), ``BENCH_WORK`` where the work directory is
made (default /var/tmp). Run as root, with the rkt installed in this Python's environment.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402
from inputs import Inputs, timed_environment  # noqa: E402
from measure import run  # noqa: E402
from rows import MIB, ROWS, Row, Side  # noqa: E402
from stats import Spread, pairwise_ratio  # noqa: E402


@dataclass(frozen=True)
class Result:
    """The figures of one row."""

    row: Row
    ours: Spread
    reference: Spread
    reference_label: str
    ratio: float
    pairs: int


def measure_row(row: Row, inputs: Inputs, runs: int, env: dict[str, str]) -> Result:
    """Run ``row``'s sides ``runs`` times each, alternating, after one warm-up run each."""
    ours, reference = row.ours(inputs), row.reference(inputs)
    samples: dict[str, list[float]] = {"ours": [], "reference": []}
    for i in range(runs + 1):
        for name, side in (("ours", ours), ("reference", reference)):
            sample = _run_side(side, env, row.memory)
            if i:  # the first pair warms the caches up
                samples[name].append(sample.max_rss_bytes if row.memory else sample.seconds)
    return Result(row, Spread.of(samples["ours"]), Spread.of(samples["reference"]),
                  reference.label, pairwise_ratio(samples["ours"], samples["reference"]), runs)


def _run_side(side: Side, env: dict[str, str], memory: bool):
    side.before()
    os.sync()
    return run(side.commands, {**env, **side.env}, side.ok_status, memory)


def figure(spread: Spread, memory: bool) -> str:
    """``142 ms (130–160)`` or ``27.2 MiB (27.0–27.5)``."""
    if memory:
        return f"{spread.median / MIB:.1f} MiB ({spread.low / MIB:.1f}–{spread.high / MIB:.1f})"
    if spread.median >= 1:
        return f"{spread.median:.2f} s ({spread.low:.2f}–{spread.high:.2f})"
    return f"{spread.median * 1e3:.0f} ms ({spread.low * 1e3:.0f}–{spread.high * 1e3:.0f})"


def table_line(result: Result) -> str:
    """The Markdown table line of a measured row."""
    row, target = result.row, result.row.target
    verdict = ""
    if target:
        met = target.met(result.ratio, result.ours.median)
        verdict = f"{target}: {'met' if met else 'not met'}"
    return (f"| {row.work} | {result.pairs} | {figure(result.ours, row.memory)} | "
            f"{result.reference_label} {figure(result.reference, row.memory)} | "
            f"{result.ratio:.2f}× | {verdict} |")


def selected_rows() -> list[Row]:
    """The rows ``BENCH_ROWS`` picks (all by default)."""
    words = [w.strip().lower() for w in os.environ.get("BENCH_ROWS", "").split(",") if w.strip()]
    return [r for r in ROWS if not words or any(w in r.work.lower() for w in words)]


def wait_for_settled_install() -> None:
    """Sleep until the install is older than rkt's plugin index allows for: rkt writes no index
    while a ``sys.path`` directory changed in the last ``RACY_SECONDS`` (an install may still be
    under way), so every command that soon after ``make bench``'s install scans the installed
    distributions (tens of ms). A user's commands come after their install is over."""
    from rkt_core.plugin_index import RACY_SECONDS

    newest = max((os.stat(p).st_mtime for p in sys.path[1:] if os.path.isdir(p)), default=0)
    time.sleep(max(0.0, newest + RACY_SECONDS + 1 - time.time()))


def main() -> int:
    if os.geteuid() != 0:
        print("bench: run as root (pods, mounts, network namespaces)", file=sys.stderr)
        return 2
    runs = int(os.environ["BENCH_RUNS"]) if os.environ.get("BENCH_RUNS") else None
    cache = Path(os.environ.get("BENCH_CACHE", "/var/cache/rkt-bench"))
    work = Path(tempfile.mkdtemp(prefix="rkt-bench-", dir=os.environ.get("BENCH_WORK", "/var/tmp")))
    installed = {e.name for e in entry_points(group="rkt.plugins")}
    env = timed_environment()
    inputs = Inputs(work, cache)
    wait_for_settled_install()
    lines, failed = [], 0
    print(f"# rkt benchmarks, {datetime.date.today()}")
    for line in [machine.source(Path(__file__).parent.parent), *machine.describe(str(work))]:
        print(f"- {line}")
    try:
        for row in selected_rows():
            missing = [p for p in row.requires if p not in installed]
            if missing:
                lines.append(f"| {row.work} | | not run: plugin {', '.join(missing)} not installed"
                             " | | | |")
                continue
            print(f"{row.work} ...", file=sys.stderr, flush=True)
            try:
                lines.append(table_line(measure_row(row, inputs, runs or row.runs, env)))
            except Exception:  # one broken row must not hide the others' figures
                failed += 1
                traceback.print_exc()
                lines.append(f"| {row.work} | | failed (see the error above) | | | |")
            print(lines[-1], file=sys.stderr, flush=True)
    finally:
        inputs.close()
    print(f"- at end: {machine.load()}\n")
    print("| work | pairs | ours: median (min–max) | reference: median (min–max) | ratio | target |")
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))
    print("\nratio: the median of the pairwise ratios ours / reference (each pair ran back to back)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
