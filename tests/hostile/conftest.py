"""The hardening suite: hostile input, crashes and races, each case asserting a clear error
and nothing lost, leaked or written where it should not be.

Every test here records what it tried in ``figures`` (``figures.add(area, trials, failures)``);
the suite prints the totals per area at the end of the run (cases, trials, failures), so CI logs
show how much was tried, not only that it passed.
"""

from __future__ import annotations

import os

import pytest
from hostile import FIGURES, Figures, Victim
from hypothesis import HealthCheck, settings

from rkt_core.testing.runner import Rkt

# Fuzzing is bounded by a number of examples per test, never by time (the machine may be
# busy); RKT_FUZZ_EXAMPLES raises it for a longer search. No example database is written.
settings.register_profile(
    "hostile", max_examples=int(os.environ.get("RKT_FUZZ_EXAMPLES", "300")), deadline=None,
    database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture])  # ``figures`` only counts
settings.load_profile("hostile")


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
