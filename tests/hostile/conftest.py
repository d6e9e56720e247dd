"""The hardening suite: hostile input, crashes and races, each case asserting a clear error
and nothing lost, leaked or written where it should not be.

Every test here records what it tried in ``figures`` (``figures.add(area, trials, failures)``);
the suite prints the totals per area at the end of the run (cases, trials, failures), so CI logs
show how much was tried, not only that it passed.
"""

from __future__ import annotations

import pytest
from hostile import FIGURES, Figures, Victim

from rkt_core.testing.runner import Rkt


@pytest.fixture
def figures() -> Figures:
    """Counts of this test's trials (``figures.add(area, trials, failures)``)."""
    return Figures()


@pytest.fixture
def rkt(tmp_path) -> Rkt:
    """The kit's runner (``rkt.data_dir``...), signatures not required, commands may take long."""
    rkt = Rkt(tmp_path, timeout=600)
    yield rkt
    rkt.cleanup()


@pytest.fixture
def victim(tmp_path) -> Victim:
    """A directory beside every target whose content must stay byte-identical."""
    return Victim(tmp_path / "victim")


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("hardening suite figures")
    write(f"{'area':<24}{'cases':>8}{'trials':>10}{'failures':>10}")
    for area in sorted(FIGURES):
        cases, trials, failures = FIGURES[area]
        write(f"{area:<24}{cases:>8}{trials:>10}{failures:>10}")
    totals = [sum(f[i] for f in FIGURES.values()) for i in range(3)]
    write(f"{'total':<24}{totals[0]:>8}{totals[1]:>10}{totals[2]:>10}")
