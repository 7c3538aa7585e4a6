"""Deterministic ids and a scheduler that does nothing."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from kernel.commands import Command


class SequentialIds:
    """Ids ``prefix-1``, ``prefix-2``, ... so tests and decisions are repeatable.

    >>> ids = SequentialIds()
    >>> ids.new_id(), ids.new_id()
    ('id-1', 'id-2')
    """

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


class NoopScheduler:
    """Records scheduled commands and never runs them."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[Command[Any], datetime]] = []

    def schedule(self, command: Command[Any], at: datetime) -> None:
        self.scheduled.append((command, at))
