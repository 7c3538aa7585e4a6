"""How much of a stage's CPU time is spent inside ``sqlite3`` calls.

``timed_connections()`` makes the ``SqliteStore`` connections opened while it
is active count, per thread, the CPU time (``time.thread_time``: waiting for
the GIL or a lock is not counted) spent in each call into the ``sqlite3``
module: ``execute``, ``executemany``, fetching rows, ``COMMIT``. That is
SQLite's own work plus the module's binding of parameters and building of
rows: what no change to the Python above it can take away. Counting costs
time of its own (about 0.1 ms a stage), so its run is not the throughput
measure; ``bench/end_to_end.py --sqlite-time`` prints it in a line of its own.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_clock = time.thread_time


class CallTime:
    """CPU seconds spent inside ``sqlite3`` calls, and how many calls, since ``reset``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.calls = 0

    def add(self, seconds: float, calls: int) -> None:
        with self._lock:
            self.seconds += seconds
            self.calls += calls

    def reset(self) -> None:
        with self._lock:
            self.seconds, self.calls = 0.0, 0


CALL_TIME = CallTime()
"""What the connections opened under :func:`timed_connections` have spent."""


def _timed(method: Callable[..., Any], calls: int) -> Callable[..., Any]:
    """``method`` counting its CPU time, and ``calls`` calls, in :data:`CALL_TIME`."""

    def timed(self: sqlite3.Cursor, *args: Any) -> Any:
        start = _clock()
        try:
            return method(self, *args)
        finally:
            CALL_TIME.add(_clock() - start, calls)

    return timed


class _TimedCursor(sqlite3.Cursor):
    execute = _timed(sqlite3.Cursor.execute, 1)
    executemany = _timed(sqlite3.Cursor.executemany, 1)
    fetchone = _timed(sqlite3.Cursor.fetchone, 0)
    fetchall = _timed(sqlite3.Cursor.fetchall, 0)
    __next__ = _timed(sqlite3.Cursor.__next__, 0)


class _TimedConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _TimedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, *args: Any) -> Any:
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> Any:
        return self.cursor().executemany(*args)


@contextmanager
def timed_connections() -> Iterator[CallTime]:
    """Stores opened inside this block count their ``sqlite3`` calls in :data:`CALL_TIME`
    (the store calls ``sqlite3.connect``, replaced meanwhile)."""
    module: Any = sqlite3
    connect = module.connect

    def timed(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        kwargs.setdefault("factory", _TimedConnection)
        made: sqlite3.Connection = connect(*args, **kwargs)
        return made

    module.connect = timed
    try:
        yield CALL_TIME
    finally:
        module.connect = connect
