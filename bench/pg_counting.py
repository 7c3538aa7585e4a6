"""Counts what a ``PostgresStore`` sends to the server, for the benchmarks.

:func:`counting_store` builds a store whose pooled connections count, in
:data:`COUNTS` (one per process):

- statements: every ``execute`` (an ``executemany`` counts one per row);
- round trips: each time the client waits for the server: a statement sent
  outside pipeline mode, each pipeline sync (the end of a ``pipeline()``
  block), and a fetch that has to wait for a pipelined result;
- write transactions: a ``COMMIT`` of a transaction that ran an ``INSERT``,
  ``UPDATE`` or ``DELETE``, and such a statement run on its own in autocommit,
  as ``bench/end_to_end.py`` counts them on SQLite. (The store's wake-up after
  a commit, ``pg_notify`` in a transaction of its own that writes no row and
  does not wait for the disk, is not one.)

The counting happens in the connection and cursor classes of psycopg, under
the store's code, so the store cannot miss or hide a statement. The store's
``LISTEN`` connection counts too (its look turns: ``LookTurns``; waiting for a
notification sends nothing); the connection it migrates on does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from psycopg import Connection, Cursor, Pipeline
from psycopg.rows import DictRow

from adapters.postgres import PostgresStore

_WRITE = re.compile(rb"\b(?:INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
_COMMENTS = re.compile(rb"--[^\n]*")


class Counts:
    """Statements, round trips and write transactions of one process."""

    def __init__(self) -> None:
        self.statements = 0
        self.round_trips = 0
        self.write_transactions = 0

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.round_trips, self.write_transactions


COUNTS = Counts()
"""What this process's counting stores have sent so far."""

_writes: dict[bytes, bool] = {}


def _is_write(query: Any) -> bool:
    text = query if isinstance(query, bytes) else str(query).encode()
    known = _writes.get(text)
    if known is None:
        known = _writes[text] = bool(_WRITE.search(_COMMENTS.sub(b"", text)))
    return known


class CountingCursor(Cursor[DictRow]):
    """A cursor that counts its statements and its waits for the server."""

    _conn: CountingConnection

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Self:
        self._conn.count(query, pipelined=self._conn._pipeline is not None)
        return super().execute(query, params, **kwargs)

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        rows = list(params_seq)
        for _ in rows:
            self._conn.count(query, pipelined=True)
        if self._conn._pipeline is None:
            COUNTS.round_trips += 1  # psycopg pipelines the rows itself: one sync
        super().executemany(query, rows, **kwargs)

    def _fetch_pipeline(self) -> None:
        if self._conn._pipeline is not None and not self.pgresult:
            COUNTS.round_trips += 1  # the result is not back yet: flush and wait
        super()._fetch_pipeline()


class CountingConnection(Connection[DictRow]):
    """A pooled connection that counts (see the module docstring)."""

    in_transaction = False
    wrote = False

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        conn = super().connect(conninfo, **kwargs)
        conn.cursor_factory = CountingCursor
        return conn

    def count(self, query: Any, *, pipelined: bool) -> None:
        COUNTS.statements += 1
        if not pipelined:
            COUNTS.round_trips += 1
        head = query[:12].upper() if isinstance(query, bytes) else b""
        if head.startswith(b"BEGIN"):
            self.in_transaction, self.wrote = True, False
        elif head.startswith(b"COMMIT"):
            COUNTS.write_transactions += self.wrote
            self.in_transaction, self.wrote = False, False
        elif head.startswith(b"ROLLBACK") and not head.startswith(b"ROLLBACK T"):
            self.in_transaction, self.wrote = False, False
        elif _is_write(query):
            if self.in_transaction:
                self.wrote = True
            else:
                COUNTS.write_transactions += 1

    @contextmanager
    def pipeline(self) -> Iterator[Pipeline]:
        try:
            with super().pipeline() as pipeline:
                yield pipeline
        finally:
            COUNTS.round_trips += 1  # each pipeline block ends with a sync


def counting_store(dsn: str, **kwargs: Any) -> PostgresStore:
    """A ``PostgresStore`` whose pooled connections count into :data:`COUNTS`."""
    return PostgresStore(dsn, connection_class=CountingConnection, **kwargs)
