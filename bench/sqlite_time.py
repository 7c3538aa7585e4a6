"""How much of a stage's CPU time is spent inside ``sqlite3`` calls.

``timed_connections()`` makes the ``SqliteStore`` connections opened while it
is active count, per thread, the CPU time (``time.thread_time``: waiting for
the GIL or a lock is not counted) spent in each call into the ``sqlite3``
module: ``execute``, ``executemany``, fetching rows, ``COMMIT``. That is
SQLite's own work plus the module's binding of parameters and building of
rows: what no change to the Python above it can take away. It is also kept per
statement (fetching a statement's rows counts as its time).
Counting costs time of its own (about 0.1 ms a stage), so its run is not the
throughput measure; ``bench/end_to_end.py --sqlite-time`` prints it in a line
of its own, and ``--sqlite-statements N`` the N statements that took most.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.sqlite_hooks import connections_using

_clock = time.thread_time


class CallTime:
    """CPU seconds spent inside ``sqlite3`` calls, and how many calls, since ``reset``;
    and the same per statement (:func:`statement_label`), fetching its rows included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.calls = 0
        self.by_statement: dict[str, list[float]] = {}
        """Per statement label: ``[seconds, calls]``."""

    def add(self, seconds: float, calls: int, label: str = "") -> None:
        with self._lock:
            self.seconds += seconds
            self.calls += calls
            kept = self.by_statement.get(label)
            if kept is None:
                kept = self.by_statement[label] = [0.0, 0]
            kept[0] += seconds
            kept[1] += calls

    def reset(self) -> None:
        with self._lock:
            self.seconds, self.calls = 0.0, 0
            self.by_statement = {}

    def top(self, count: int) -> list[tuple[str, float, int]]:
        """The ``count`` statements that took the most time: (label, seconds, calls)."""
        with self._lock:
            ranked = sorted(self.by_statement.items(), key=lambda item: -item[1][0])
        return [(label, seconds, int(calls)) for label, (seconds, calls) in ranked[:count]]


_ROW_GROUPS = re.compile(r"\(\?(?:, ?\?)*\)(?:, ?\(\?(?:, ?\?)*\))+")


def statement_label(sql: object) -> str:
    """A statement's text without its comment lines, on one line, its multi-row ``VALUES``
    folded (so a statement written for 2, 4 or 8 rows is one label), cut to 90
    characters.

    >>> statement_label("-- the runs\nINSERT INTO t (a, b)\nVALUES (?, ?), (?, ?)")
    'INSERT INTO t (a, b) VALUES (?, ...), ...'
    """
    lines = [line for line in str(sql).splitlines() if not line.lstrip().startswith("--")]
    text = " ".join(" ".join(lines).split())
    return _ROW_GROUPS.sub("(?, ...), ...", text)[:90]


CALL_TIME = CallTime()
"""What the connections opened under :func:`timed_connections` have spent."""


def _timed(method: Callable[..., Any], calls: int) -> Callable[..., Any]:
    """``method`` counting its CPU time, and ``calls`` calls, in :data:`CALL_TIME`: a
    statement's call under its label, a fetch under the label of the cursor's statement."""

    def timed(self: _TimedCursor, *args: Any) -> Any:
        if calls:
            self.label = statement_label(args[0]) if args else ""
        start = _clock()
        try:
            return method(self, *args)
        finally:
            CALL_TIME.add(_clock() - start, calls, self.label)

    return timed


class _TimedCursor(sqlite3.Cursor):
    label = ""
    """The label of the statement this cursor ran last."""

    execute = _timed(sqlite3.Cursor.execute, 1)
    executemany = _timed(sqlite3.Cursor.executemany, 1)
    fetchone = _timed(sqlite3.Cursor.fetchone, 0)
    fetchall = _timed(sqlite3.Cursor.fetchall, 0)
    __next__ = _timed(sqlite3.Cursor.__next__, 0)


@contextmanager
def timed_connections() -> Iterator[CallTime]:
    """Stores opened inside this block count their ``sqlite3`` calls in :data:`CALL_TIME`."""
    with connections_using(_TimedCursor):
        yield CALL_TIME
