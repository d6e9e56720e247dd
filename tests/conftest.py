"""Shared test configuration. The fixtures and the ``root`` marker (skipped unless root) come
from rkt's pytest kit, ``rkt_core.testing.pytest_plugin``, as for any plugin's tests.

``RKT_TESTS_STRICT=1`` (set by ``make test`` and CI) turns every skip into a failure: in CI the
real components are installed, so a test that skips is a test that did not run.
"""

import os

import pytest

STRICT = os.environ.get("RKT_TESTS_STRICT") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in strict mode (RKT_TESTS_STRICT=1): {reason}"
