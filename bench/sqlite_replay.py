"""The SQL of a measure, replayed alone: what the statements cost with no engine around them.

``recorded_connections()`` makes the ``SqliteStore`` connections opened while it
is active keep every ``execute`` and ``executemany`` that succeeded, with its
parameters, in :data:`RECORDING` (between :meth:`Recording.start` and
:meth:`Recording.stop`). The end-to-end benchmark shares one store connection
between its producer and its host, and the store serialises every call on it,
so the recording is the exact order in which SQLite ran them.

:func:`replay` runs those statements again, in that order, on a new store file
(same schema, same connection settings) in one thread, fetching every row a
statement returns, and times them. That is the cost of the SQL a stage needs:
SQLite's work, the WAL writes at each ``COMMIT``, and the ``sqlite3`` module's
binding of parameters and building of rows, with no kernel, host or encoding
around it and no waiting for the GIL. Its rate is an upper bound on what any
Python above the same statements could reach on one connection.

The replay checks itself: the new file must end with the same rows as the
measured one (:func:`state_of`), or :func:`replay` raises.

    .venv/bin/python bench/end_to_end.py --runs 2000 --replay
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from attrs import frozen

from adapters.sqlite import SqliteStore
from bench.sqlite_hooks import connections_using


@frozen
class Call:
    """One recorded statement: ``many`` for ``executemany`` (``params`` then a list of rows)."""

    sql: str
    params: Any
    many: bool = False


class Recording:
    """The statements run on recorded connections between ``start`` and ``stop``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.on = False

    def start(self) -> None:
        self.calls = []
        self.on = True

    def stop(self) -> list[Call]:
        self.on = False
        return self.calls


RECORDING = Recording()
"""What the connections opened under :func:`recorded_connections` have run."""


def _frozen_params(params: Any) -> Any:
    """A copy of one statement's parameters, so a caller reusing its dict changes nothing."""
    if isinstance(params, Mapping):
        return dict(params)
    return tuple(params)


class _RecordingCursor(sqlite3.Cursor):
    def execute(self, sql: str, params: Any = (), /) -> Any:
        done = super().execute(sql, params)
        if RECORDING.on:
            RECORDING.calls.append(Call(sql, _frozen_params(params)))
        return done

    def executemany(self, sql: str, rows: Any, /) -> Any:
        rows = [_frozen_params(row) for row in rows]
        done = super().executemany(sql, rows)
        if RECORDING.on:
            RECORDING.calls.append(Call(sql, rows, many=True))
        return done


@contextmanager
def recorded_connections() -> Iterator[Recording]:
    """Stores opened inside this block record their statements in :data:`RECORDING`."""
    with connections_using(_RecordingCursor):
        yield RECORDING


_STATE_QUERIES = {
    "runs": "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status",
    "stages": "SELECT status, count(*) FROM stages GROUP BY status ORDER BY status",
    "jobs": "SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status",
    "outbox": (
        "SELECT published_at IS NOT NULL, count(*), max(sequence) FROM outbox GROUP BY 1 ORDER BY 1"
    ),
    "blobs": "SELECT count(*) FROM blobs",
}


def state_of(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """What the file holds, in counts: runs, stages and jobs by status, outbox events
    published or not, stored blobs."""
    return {name: [tuple(row) for row in conn.execute(q)] for name, q in _STATE_QUERIES.items()}


@frozen
class Replayed:
    """A replay's figures."""

    statements: int
    cpu_seconds: float
    """Process time of the replay (one thread: the statements and fetching their rows)."""


def replay(calls: list[Call], path: Path, expected: dict[str, list[tuple[Any, ...]]]) -> Replayed:
    """Run ``calls`` on a new store file at ``path``, in order, and time them.

    Raises:
        AssertionError: the file does not end with the ``expected`` :func:`state_of`
            (the recording missed a statement, or ran on a file that held rows before).
    """
    store = SqliteStore(path)
    try:
        conn = store._conn
        cpu = time.process_time()
        for call in calls:
            if call.many:
                conn.executemany(call.sql, call.params)
            else:
                conn.execute(call.sql, call.params).fetchall()
        cpu = time.process_time() - cpu
        replayed = state_of(conn)
    finally:
        store.close()
    if replayed != expected:
        raise AssertionError(f"the replay ended with {replayed}, the measure with {expected}")
    return Replayed(statements=len(calls), cpu_seconds=cpu)
