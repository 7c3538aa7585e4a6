"""Reports how many seeds the simulation tests ran (the CI run is bounded by time)."""

from __future__ import annotations

import pytest

SUMMARY: list[str] = []
"""Lines the simulation tests leave for the end of the session."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("simulation")
        for line in SUMMARY:
            terminalreporter.write_line(line)
