"""Reports how many seeds the simulation tests ran (the CI runs are bounded by time).

A test calls :func:`report`; the line travels in its test report's
``user_properties``, so it reaches the end of the session from pytest-xdist's
workers too. The two hooks are imported by ``tests/conftest.py``, which the
session (xdist's controller included) always loads.
"""

from __future__ import annotations

import pytest

SUMMARY: list[str] = []
"""Lines the simulation tests left for the end of the session."""

KEY = "wfk simulation"


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Say ``line`` at the end of the test session."""
    request.node.user_properties.append((KEY, line))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        SUMMARY.extend(str(value) for key, value in report.user_properties if key == KEY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("simulation")
        for line in sorted(SUMMARY):
            terminalreporter.write_line(line)
