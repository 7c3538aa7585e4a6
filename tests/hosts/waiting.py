"""Bounded waiting for the threaded and multi-process host tests: never an open-ended sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

STEP_S = 0.01


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(STEP_S)
