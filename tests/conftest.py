"""Shared test configuration.

``RKT_TESTS_STRICT=1`` (set by ``make test`` and CI) turns every skip into a failure: in CI the
real components are installed, so a test that skips is a test that did not run.
"""

import os

import pytest

STRICT = os.environ.get("RKT_TESTS_STRICT") == "1"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("root") and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in strict mode (RKT_TESTS_STRICT=1): {reason}"
