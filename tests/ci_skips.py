"""A pytest plugin (loaded by tests/conftest.py): under CI=true a skipped test is a failed one, so a
test that skips for a missing service, browser or data set cannot pass a CI run without testing
anything. Locally skips stay skips, listed with their reasons by `-ra`."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped test is a failed one: a test that skips for a missing service, browser
    or data set would otherwise pass a CI run without testing anything. (`-ra` lists the reasons.)"""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
