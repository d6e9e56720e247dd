"""The benchmark harness (bench/): its figures on fixed numbers, the order and preparation of
paired runs, targets, and peak memory. Nothing here times anything."""

import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    """bench/bench.py and its sibling modules, imported from bench/ (not a package)."""
    saved = list(sys.path)
    sys.path.insert(0, str(BENCH))
    try:
        import bench as module
        yield module
    finally:
        sys.path[:] = saved
        for name in ("bench", "inputs", "machine", "measure", "rows", "stats"):
            sys.modules.pop(name, None)


def test_ratio_is_the_median_of_the_pairwise_ratios_not_the_ratio_of_medians(bench):
    ours = [1.0, 4.0, 9.0]
    reference = [1.0, 1.0, 9.0]  # ratios 1, 4, 1
    assert bench.pairwise_ratio(ours, reference) == 1.0
    assert bench.Spread.of(ours).median / bench.Spread.of(reference).median == 4.0


def test_a_slow_pair_moves_both_sides_and_leaves_the_ratio(bench):
    ours = [0.2, 0.2, 0.8, 0.2]  # the third pair ran while the machine was busy
    reference = [0.1, 0.1, 0.4, 0.1]
    assert bench.pairwise_ratio(ours, reference) == 2.0


def test_an_even_number_of_pairs_takes_the_mean_of_the_middle_ratios(bench):
    assert bench.pairwise_ratio([1.0, 3.0, 2.0, 8.0], [1.0, 1.0, 1.0, 1.0]) == 2.5


def test_spread_is_the_median_and_the_range(bench):
    assert bench.Spread.of([0.3, 0.1, 0.2, 0.5]) == bench.Spread(0.25, 0.1, 0.5)


@pytest.mark.parametrize("ours, reference", [([], []), ([1.0], [1.0, 2.0])])
def test_pairwise_ratio_needs_pairs(bench, ours, reference):
    with pytest.raises(ValueError):
        bench.pairwise_ratio(ours, reference)


def test_sides_alternate_each_prepared_before_every_run_after_a_warm_up_pair(bench, tmp_path):
    from rows import Row, Side

    log = tmp_path / "log"

    def side(name):
        def before():
            with log.open("a") as f:
                f.write(f"before-{name}\n")

        # the command appends to the log too: preparation and run must interleave
        return Side(name, [["sh", "-c", f"echo run-{name} >> {log}"]], before)

    row = Row("test", lambda i: side("ours"), lambda i: side("reference"))
    result = bench.measure_row(row, None, runs=3, env=dict(os.environ))
    pair = ["before-ours", "run-ours", "before-reference", "run-reference"]
    assert log.read_text().split() == pair * 4
    assert result.reference_label == "reference"
    assert result.ours.low <= result.ours.median <= result.ours.high


def test_a_failing_command_is_an_error_with_its_stderr(bench):
    from measure import CommandFailed, run

    with pytest.raises(CommandFailed, match="exited with 3: broken"):
        run([["sh", "-c", "echo broken >&2; exit 3"]], dict(os.environ), frozenset({0}))


def test_peak_memory_is_the_command_s_own_not_the_harness_s(bench):
    from measure import run

    env = dict(os.environ)
    small = run([["/bin/true"]], env, frozenset({0}), memory=True).max_rss_bytes
    big = run([[sys.executable, "-c", "b = bytearray(96 << 20); b[::4096] = b'x' * len(b[::4096])"]],
              env, frozenset({0}), memory=True).max_rss_bytes
    assert 0 < small < 8 << 20  # pytest's own resident set is far larger
    assert big >= 96 << 20


def test_targets_on_the_ratio_or_on_our_figure(bench):
    from rows import MIB, Target

    assert Target(1.5).met(ratio=1.5, ours_median=10.0)
    assert not Target(1.5).met(ratio=1.6, ours_median=0.001)
    memory = Target(21 * MIB, unit="MiB")
    assert memory.met(ratio=9.0, ours_median=20 * MIB)
    assert not memory.met(ratio=0.5, ours_median=22 * MIB)
    assert str(memory) == "≤ 21 MiB" and str(Target(1.2, "note")) == "≤ 1.2× (note)"
    assert str(Target(6.0, unit="s")) == "≤ 6 s"


def test_table_line_names_both_sides_the_ratio_and_the_verdict(bench):
    from rows import Row, Target

    row = Row("fly pod", None, None, Target(1.5))
    result = bench.Result(row, bench.Spread(0.142, 0.130, 0.160), bench.Spread(0.035, 0.033, 0.040),
                          "`runc run`", 4.05, 11)
    assert bench.table_line(result) == ("| fly pod | 11 | 142 ms (130–160) | `runc run` 35 ms "
                                        "(33–40) | 4.05× | ≤ 1.5×: not met |")
